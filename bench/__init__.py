"""The benchmark of issue 7 (`make bench`, `python -m bench`): the service against the C tools.

Modules: `cases` generates the reference cases, `measure` times and weighs a child process,
`runner` is the measured Python side, `ctools` the C toolchain, `watchlatency` the watcher's
latency, `__main__` the measurements, `bench/results.json` and the printed table.
"""
