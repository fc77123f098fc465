"""The native probe: its C sources (probe.c's header is the map of the files and of what the
four timed phases time), building it (cached by content hash), its command line and output
contract (native), and running one probe process (execute).
"""
