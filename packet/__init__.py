"""imr-packet: assembles California Independent Medical Review record packets.

The library does the work (`packet.build.build_case`, `packet.seal.seal_case`, ...); the command
line (`packet.cli`) and the watcher (`packet.watch`) are thin shells around it.
"""

__version__ = "0.2.0"
