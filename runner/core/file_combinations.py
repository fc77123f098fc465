"""The combination rules of the data file and file I/O: which file layouts, origins, opens,
content checks and reused read/write buffers a scenario's backing and workload can take.
find_conflict (runner.core.combinations) asks these after the general rules."""

from __future__ import annotations

from collections.abc import Mapping

from runner.core.choices import (
    BACKING_ONLY,
    FILE_BACKINGS,
    LAYOUT_MIN_BYTES,
    PAST_EOF_LAYOUTS,
    READING_ACCESSES,
    WRITING_ACCESSES,
)
from runner.core.kinds import Value
from runner.core.parameters import BY_KEY, DEFAULTS
from runner.core.units import (
    PPM,
)

# What each file-I/O backing does with its reused buffer, for the errors below.
_BUFFER_USE = {"read_buffer": ("reads into", "reads no file with read()", "reads them"),
               "write_buffer": ("writes from", "writes no file with write()", "writes them")}


def reused_buffer(params: Mapping[str, Value]) -> str | None:
    """The buffer key of read-file or write-file through a reused buffer (first touch and
    second pass are then preads or pwrites of chunks, and there are no blocks), else None."""
    for key, backing in BACKING_ONLY.items():
        if params["backing"] == backing and params[key] != 0:
            return key
    return None


def io_buffer_conflict(params: Mapping[str, Value]) -> str | None:
    """read_buffer and write_buffer: only for their backing, and a reused buffer only where
    the workload needs no blocks."""
    backing = params["backing"]
    for key, owner in BACKING_ONLY.items():
        if backing != owner and params[key] != DEFAULTS[key]:
            uses, none, _ = _BUFFER_USE[key]
            return (f"{key} is the buffer {owner} {uses}, and backing {backing} {none} "
                    f"(use backing {owner}, or leave {key} out)")
    buffered = reused_buffer(params)
    if buffered is None:
        return None
    key = buffered
    shown, does = f"{key} {BY_KEY[key].format(params[key])}", _BUFFER_USE[key][2]
    if params["workload"] != "cycle" and backing == "read-file":  # write-file: cycle alone
        return (f"workload {params['workload']} keeps the blocks in memory, and {backing} with "
                f"{shown} {does} through one reused buffer (use {key}: whole)")
    if params["check_zero"]:
        return (f"check_zero reads the blocks after allocate, and {backing} with a reused "
                f"buffer allocates none (use {key}: whole)")
    if params["release"] not in ("auto", "free"):
        return (f"release {params['release']} gives blocks back, and {backing} with a reused "
                f"buffer has none: its buffer is reused (use release: auto, or {key}: whole)")
    return None


def file_conflict(params: Mapping[str, Value]) -> str | None:
    backing, access, sync = params["backing"], params["access"], params["sync"]
    if params["cache"] == "cold" and backing not in FILE_BACKINGS:
        return (f"cache cold evicts the data file from the page cache, and backing {backing} has "
                "no file (use backing mmap-file, read-file or write-file, or cache: warm)")
    if backing == "write-file" and access not in WRITING_ACCESSES:
        return (f"write-file writes to the file what the access pattern wrote, and access "
                f"{access} writes nothing (use access: write-page or write-all)")
    if sync == "none":
        return None
    if access not in WRITING_ACCESSES:
        return (f"sync {sync} flushes what the access pattern wrote to the file, and access "
                f"{access} writes nothing (use access: write-page or write-all)")
    if backing == "write-file":
        if sync == "msync":
            return ("msync flushes a mapping, and write-file writes its heap buffer with pwrite "
                    "(use sync: fsync, or backing mmap-file)")
        return None
    if backing != "mmap-file":
        return (f"sync {sync} flushes writes to the data file, and backing {backing} has none "
                "(use backing mmap-file with sharing: shared, or write-file)")
    if params["sharing"] != "shared":
        return (f"a private file mapping never writes to its file, so sync {sync} has nothing "
                "to flush (use sharing: shared)")
    return None


# Parameters of workload cycle with one thread alone: they choose the pages one pass visits, or
# make, lay out, check or open the data file around the blocks of that one thread.
CYCLE_FILE_KEYS = ("touch_share", "file_origin", "file_layout", "check_content", "file_open")


def file_io_conflict(params: Mapping[str, Value]) -> str | None:
    """touch_share, file_origin, file_layout, check_content and file_open: what each needs
    (their workload and thread count: _workload_conflict and _threads_conflict)."""
    return (_touch_share_conflict(params) or _file_origin_conflict(params)
            or _file_layout_conflict(params) or _check_content_conflict(params)
            or _file_open_conflict(params))


def _touch_share_conflict(params: Mapping[str, Value]) -> str | None:
    share = params["touch_share"]
    if share == PPM or params["access"] != "none" or reused_buffer(params) is not None:
        return None
    return (f"touch_share {BY_KEY['touch_share'].format(share)} is the share of pages the access "
            "pattern visits, and access none visits none (use access: write-page, write-all, "
            "read-page or read-all, or touch_share: 100%)")


def _file_origin_conflict(params: Mapping[str, Value]) -> str | None:
    if params["file_origin"] == "existing":
        return None
    backing = params["backing"]
    if backing == "read-file":
        return ("file_origin new creates the data file inside allocate, empty, and read-file "
                "would have nothing to read (use backing mmap-file or write-file, or "
                "file_origin: existing)")
    if backing not in FILE_BACKINGS:
        return (f"file_origin new creates the data file of a file backing, and backing {backing} "
                "has none (use backing mmap-file or write-file)")
    if params["cache"] == "cold":
        return ("cache cold evicts the data file before each iteration, and file_origin new "
                "creates it inside allocate: there is nothing to evict (use cache: warm)")
    return None


def _file_layout_conflict(params: Mapping[str, Value]) -> str | None:
    layout = params["file_layout"]
    if layout == "whole":
        return None
    if params["backing"] != "mmap-file":
        return (f"file_layout {layout} is what a file mapping shows of its file, and backing "
                f"{params['backing']} maps none (use backing mmap-file)")
    if params["file_origin"] != "existing":
        return (f"file_layout {layout} lays out a file written before timing, and file_origin "
                f"{params['file_origin']} creates it in allocate (use file_origin: existing)")
    if int(params["size"]) < LAYOUT_MIN_BYTES:
        return (f"file_layout {layout} needs blocks of at least two pages, and size is "
                f"{BY_KEY['size'].format(params['size'])} (use size: 8KiB or more)")
    if not params["check_content"]:
        return (f"file_layout {layout} changes only what check_content reads (use "
                "check_content: true, or file_layout: whole)")
    if layout not in PAST_EOF_LAYOUTS:
        return None
    if params["access"] != "none":
        return (f"file_layout {layout} leaves pages of the last block past the end of the file, "
                f"where access {params['access']} would raise SIGBUS inside a timed phase (use "
                "access: none; check_content reads the blocks after the second pass)")
    if params["populate"] != "none" or params["advice"] == "madv-populate-read":
        how = (f"populate {params['populate']}" if params["populate"] != "none"
               else "advice madv-populate-read")
        return (f"{how} faults in every page of the blocks, and file_layout {layout} leaves some "
                "past the end of the file (use populate: none, and advice other than "
                "madv-populate-read)")
    return None


def _check_content_conflict(params: Mapping[str, Value]) -> str | None:
    if not params["check_content"]:
        return None
    if params["backing"] != "mmap-file":
        return (f"check_content compares a file mapping with its file, and backing "
                f"{params['backing']} is not one (use backing mmap-file)")
    if params["file_origin"] != "existing":
        return ("check_content compares the blocks with the pattern written before timing, and "
                "file_origin new creates an empty file (use file_origin: existing)")
    if params["access"] not in READING_ACCESSES:
        return (f"check_content compares the blocks with the file's known pattern, which access "
                f"{params['access']} overwrites (use access: none, read-page or read-all)")
    if params["protection"] == "none":
        return ("check_content reads every block, which protection none forbids (use "
                "protection: read or read-write)")
    return None


def _file_open_conflict(params: Mapping[str, Value]) -> str | None:
    if params["file_open"] == "once":
        return None
    backing = params["backing"]
    if backing not in ("mmap-file", "read-file"):
        return (f"file_open per-block opens the file for each block mmap-file maps or read-file "
                f"reads, and backing {backing} does neither (use backing mmap-file or read-file)")
    if params["file_origin"] != "existing":
        return ("file_open per-block opens the data file by its name, and file_origin new "
                "creates it inside allocate (use file_origin: existing)")
    if backing == "read-file" and (params["order"] != "sequential"
                                   or params["touch_share"] != PPM):
        return ("read-file with file_open per-block reads one block after another, each "
                "between its open and close, and order random or a touch_share below 100% "
                "interleaves or skips them (use order: sequential and touch_share: 100%)")
    if params["sync"] == "fsync":
        return ("fsync needs a descriptor of the file, and file_open per-block closes each one "
                "right after mapping its block (use sync: msync)")
    return None
