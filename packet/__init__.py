"""imr-packet: assembles California Independent Medical Review record packets.

The library does the work (`packet.pipeline.build.build_case`, `packet.pipeline.seal.seal_case`, ...); the command
line (`packet.cli`) and the watcher (`packet.service.watch`) are thin shells around it.
"""

__version__ = "0.3.0"
