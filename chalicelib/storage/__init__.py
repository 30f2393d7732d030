"""The same relative layout under a local directory or an S3 bucket.

``ObjectStore`` is what the converter reads from and writes to; outputs are
published whole (rename, or S3 multipart completion) so a reader never sees
half a CSV, and a failed conversion leaves the previous version in place.

``local`` (a directory) and ``s3`` (a bucket) implement ``base.ObjectStore``; import the one
you use, so a local run never loads botocore. Imports nothing else of the project.
"""
