"""The command line: the parser, the commands, shell completion, errors turned into exit
statuses, and the generated reference pages.
"""
