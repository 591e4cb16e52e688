"""Air-gap bundles: `shadowpi export` writes cached upstream and private packages to a bundle, `shadowpi import`
verifies one and adds it to another data dir.

Format (version 2). A bundle is a directory, or an uncompressed `.tar` of that directory's contents:

    manifest.json        format, format_version (2), created_at, shadowpi_version, source, since, files
    manifest.sha256      "<sha256 of manifest.json>  manifest.json" (`sha256sum -c manifest.sha256` works)
    deleted.json         {"deleted": [{"filename", "sha256", "deleted_at", "index"}]}: every deleted private filename
    pages/<name>.json    {"project", "etag", "last_modified", "fetched_at", "page", "upstream_files"}
    private/<name>.json  {"project", "indexes": [every index holding the name],
                          "files": [private file records with their "index", without uploaded_by],
                          "members": [{"index", "principal", "role"}]}

Version 1 (before indexes) lacks "index", "indexes" and "members": everything private in it is root's, which is
how the reader decodes any record without them. `shadowpi export --index NAME` writes only those indexes'
private records; `import` refuses an index the server does not define unless `--index-map OLD=NEW` renames it.
    blobs/<sha256>       the bytes of files, their PEP 658 `.metadata` files, private files and their metadata

`manifest.json` lists EVERY other file with its size and sha256 (`{"path", "size", "sha256"}`); only the four
path shapes above are allowed, with `<name>` a normalized project name and a blob named by its own sha256.
`page` is the cached PEP 691 document (absolute upstream URLs) with `files` restricted to the files whose
bytes are in the bundle (or, for an incremental bundle, in an earlier one); a `.metadata` file whose bytes are
not there is advertised as unavailable. `upstream_files` maps the URLs of files whose page declared no
sha256 to the sha256 their bytes turned out to have.

Incremental (`--since DATE` or `--since MANIFEST`): a blob is new when its `blobs.created_at` (upstream) or
the file's `upload_time` (private) is after the cutoff, and, with a previous manifest, that manifest does not
list it. The cutoff of a manifest is its `created_at` minus `SINCE_OVERLAP` seconds, so a file committed
while the previous export ran is never lost. Only upstream projects with a new blob are written, but always
with their full current page; every private project's records are always written (they are small and carry
yank state, which has no timestamp). Records may thus need blobs from earlier bundles: the import refuses a
bundle until every blob its records need is present (import bundles in order). `deleted.json` always lists
every deleted private filename that is not live again; the import removes those files where they are live.

Import verifies everything (paths, sizes, sha256s, the records' references) before changing anything, then
commits new blobs through the BlobStore, then writes all rows in one database transaction.
"""
