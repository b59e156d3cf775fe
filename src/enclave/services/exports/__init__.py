"""eDiscovery exports: compliance officers export what people said, where and when
(docs/compliance.md).

Modules: `jobs` (the API's use cases: start, status, list_jobs, download; and the job kinds
that run exports and sweep their expired files on the queue), `run` (the export itself: what a
query selects, writing it out, and the CLI's `run_to_directory`), `files` (the files: JSON
lines, .eml, manifest, zip). Callers import the modules.
"""
