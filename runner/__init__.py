"""alloclab: measure how memory allocation really behaves on this Linux machine.

The package is grouped by pipeline stage; each subpackage imports only those listed before it
(tests/whole/test_layers.py enforces it):

  core      the vocabulary: parameters and their combination rules, frozen values, metrics,
            units, names, errors
  spec      experiment specs -> plans (YAML loading, the walker, matrix expansion, JSON Schema)
  probe     the native C probe: building, command line, output contract, one process run
  machine   this machine: fingerprint, preconditions, memory and disk guard
  store     results on disk: run folders, untrusted-data checks, run selection, archives
  analysis  stored runs -> frames, statistics, verdicts, noise warnings, comparisons
  measure   running an experiment here: pipeline, schedule, data files, progress
  report    stored runs -> HTML pages and charts
  remote    measuring on other machines over SSH
  cli       the command line

spec, probe and machine stand side by side on core, as do measure and report on analysis.
"""

__version__ = "0.1.0"
