"""Turning every accepted input into a PDF with the text of each page, or refusing it with a reason.

Modules: `batch` (the public entry: convert / convert_many, hashing, the cache, scheduling jobs on
the worker pool), `job` (what a worker is handed), `worker` (the job's side in the worker process),
`sniff` (what kind of file it is, from its content), one converter per kind (`pdf`, `office`,
`image`, `text`), `limits` (bounded inflation and the refusals that name a limit), `refusals` (the
reason codes and their plain wording) and `ocr_hook` (where page images meet OCR).
Must not: classify, stamp or merge documents; move or change the clerk's files (they are only
read); put file names or document text into messages or the service log; parse untrusted bytes in
the service's own process (that happens in a worker, under the memory and time limits).
"""
