"""Contract: indexes, owners, token scopes and the audit log (issue 14), the same on every backend."""

from __future__ import annotations

from dataclasses import replace

from proxy.access.model import Member, TokenScope
from proxy.backends import Backends
from proxy.backends.records import AuditEntry, DeletedFile
from proxy.simple.names import NormalizedName
from tests.backends.samples import SHA_A, SHA_B, private_file

ACME = NormalizedName("acme")


async def test_the_same_filename_lives_in_two_indexes_independently(backends: Backends):
    """A project and filename in index ml are not root's: reads, yanks and deletes of one leave the other alone."""
    meta = backends.meta
    await meta.add_private_file(private_file())
    await meta.add_private_file(replace(private_file(sha256=SHA_B), index="ml"))
    assert (await meta.private_file("acme-1.0.tar.gz")).sha256 == SHA_A  # type: ignore[union-attr]
    assert (await meta.private_file("acme-1.0.tar.gz", "ml")).sha256 == SHA_B  # type: ignore[union-attr]
    assert await meta.private_project_indexes() == [("ml", ACME), ("root", ACME)]
    assert await meta.private_projects("ml") == [ACME]
    assert await meta.set_yanked(["acme-1.0.tar.gz"], "bad", "ml") == 1
    assert [f.yanked for f in await meta.private_files(ACME)] == [None]
    ml_files = await meta.private_files(ACME, "ml")
    await meta.delete_private_files(ml_files)
    assert await meta.deleted_sha256("acme-1.0.tar.gz", "ml") == SHA_B
    assert await meta.deleted_sha256("acme-1.0.tar.gz") is None
    assert [f.filename for f in await meta.private_files(ACME)] == ["acme-1.0.tar.gz"]
    assert await meta.private_files(ACME, "ml") == []
    assert await meta.private_projects("ml") == [ACME]  # the name stays private in ml
    assert await meta.is_private_blob(SHA_A) and not await meta.is_private_blob(SHA_B)
    assert await meta.add_deleted_file(DeletedFile("x-1.0.tar.gz", SHA_A, 1.0, "ml")) is True
    assert await meta.deleted_sha256("x-1.0.tar.gz", "ml") == SHA_A


async def test_bundle_reads_are_per_index(backends: Backends):
    """Export reads one index's private files and deleted names at a time (root by default), each with its index."""
    meta = backends.meta
    await meta.add_private_file(private_file())
    await meta.add_private_file(replace(private_file("b-1.0.tar.gz", project="b"), index="ml"))
    await meta.add_deleted_file(DeletedFile("c-1.0.tar.gz", SHA_A, 1.0, "ml"))
    assert [f.filename for f in await meta.bundle_private_files()] == ["acme-1.0.tar.gz"]
    assert [(f.filename, f.index) for f in await meta.bundle_private_files("ml")] == [("b-1.0.tar.gz", "ml")]
    assert await meta.bundle_deleted_files() == []
    assert await meta.bundle_deleted_files("ml") == [DeletedFile("c-1.0.tar.gz", SHA_A, 1.0, "ml")]


async def test_owners_and_maintainers(backends: Backends):
    """Members are per index and project; adding again changes the role; removing says whether there was one."""
    meta = backends.meta
    assert await meta.add_member("ml", "acme", "bob", "owner") is True
    assert await meta.add_member("ml", "acme", "bob", "owner") is False
    assert await meta.add_member("ml", "acme", "group:ml", "maintainer") is True
    assert await meta.project_members("ml", "acme") == [Member("bob", "owner"), Member("group:ml", "maintainer")]
    assert await meta.add_member("ml", "acme", "group:ml", "owner") is True
    assert await meta.project_members("root", "acme") == []
    assert await meta.remove_member("ml", "acme", "bob") is True
    assert await meta.remove_member("ml", "acme", "bob") is False
    async with meta.transaction() as tx:  # read inside a transaction too (PostgreSQL: under the private lock)
        assert await tx.project_members("ml", "acme") == [Member("group:ml", "owner")]


async def test_token_scopes_are_stored(backends: Backends):
    """A token keeps its indexes, project, actions and expiry; tokens without a scope may do everything."""
    meta = backends.meta
    scope = TokenScope(frozenset({"ml", "root"}), ACME, frozenset({"read"}), 1234.5)
    token_id = await meta.add_token("alice", "1" * 64, "ci", scope)
    record = await meta.token_record("1" * 64)
    assert record is not None
    assert record.scope == replace(scope, token_id=token_id)
    await meta.add_token("bob", "2" * 64)
    plain = await meta.live_token("2" * 64)
    assert plain is not None and plain.scope == TokenScope(token_id=plain.id)


async def test_the_audit_log_filters_newest_first(backends: Backends):
    """Entries come back newest first, by index, project and time; each has its id."""
    meta = backends.meta
    entries = [
        AuditEntry(10.0, "alice", "password", "127.0.0.1", "upload", "ml", "acme", "acme-1.0.tar.gz"),
        AuditEntry(20.0, "bob", "token:3", None, "yank", "ml", "acme", "1.0", '{"reason": "bad"}'),
        AuditEntry(30.0, "carol", "cli", None, "owner-add", "web", "site", "dave"),
    ]
    async with meta.transaction() as tx:
        for entry in entries:
            await tx.add_audit(entry)
    got = await meta.audit_entries()
    assert [e.actor for e in got] == ["carol", "bob", "alice"]
    assert got[1] == replace(entries[1], id=got[1].id)
    assert [e.actor for e in await meta.audit_entries(index="ml")] == ["bob", "alice"]
    assert [e.actor for e in await meta.audit_entries(index="ml", since=15.0)] == ["bob"]
    assert [e.actor for e in await meta.audit_entries(project="site")] == ["carol"]
    assert len(await meta.audit_entries(limit=1)) == 1
