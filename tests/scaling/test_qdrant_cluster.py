"""A server collection on a cluster: shards, replication factor and write consistency at
creation, the write ordering on every write, and backups through the snapshot API shard by
shard (create, download, checksum, upload).

Two ways, as far as each reaches: qdrant-client's local mode (the calls it supports accept
the layout and the ordering; it has no shards, snapshots or cluster info), and the stand-in of
tests/scaling/qdrant_standin.py, which answers the same REST calls a Qdrant server gets from
qdrant-client's HTTP client (docs/scaling.md says what neither of them proves)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.backup import create_backup, restore_backup
from ephemera_tui.engine.config import load_settings
from ephemera_tui.engine.errors import ConfigError, VectorStoreError
from ephemera_tui.engine.vectors import VectorPoint
from ephemera_tui.engine.vectors.server import SHARDS_INDEX, ClientVectors, ClusterLayout
from tests.scaling.qdrant_standin import Running
from tests.scaling.servers import free_port

LAYOUT = ClusterLayout(shards=3, replication_factor=2, write_consistency=2, ordering="strong")


def _points(n: int, dim: int = 8) -> list[VectorPoint]:
    rng = np.random.default_rng(7)
    return [
        VectorPoint(
            i,
            rng.random(dim).astype(np.float32),
            {"created_at": 1_700_000_000 + i, "source": "test", "hash": f"h{i}", "tags": []},
        )
        for i in range(1, n + 1)
    ]


@pytest.fixture
def standin() -> Iterator[Running]:
    server = Running(free_port())
    try:
        yield server
    finally:
        server.stop()


def test_local_mode_takes_the_layout_and_ordering(tmp_path: Path) -> None:
    vectors = ClientVectors(f"local:{tmp_path / 'q'}", 8, collection="c", cluster=LAYOUT)
    try:
        vectors.upsert(_points(20))
        vectors.delete([1, 2])
        assert vectors.count() == 18
        assert vectors.search(_points(3)[2].vector, 1)[0][0] == 3
        assert vectors.layout()["ordering"] == "strong"
        with pytest.raises(VectorStoreError, match="shard snapshots need a Qdrant server"):
            vectors.snapshot_into(tmp_path)
    finally:
        vectors.close()


def test_creation_and_writes_carry_the_layout_over_rest(standin: Running) -> None:
    vectors = ClientVectors(standin.url, 8, collection="c", cluster=LAYOUT)
    try:
        vectors.upsert(_points(30))
        vectors.delete([5])
        assert vectors.layout() == {
            "shards": 3,
            "replication_factor": 2,
            "write_consistency": 2,
            "ordering": "strong",
        }
        sibling = vectors.sibling("c2", 8)
        sibling.upsert(_points(2))
        stats = standin.stats()
        assert stats["layout"]["c"] == {
            "shard_number": 3,
            "replication_factor": 2,
            "write_consistency_factor": 2,
        }
        assert stats["layout"]["c2"]["shard_number"] == 3  # a re-embed target: same layout
        assert set(stats["orderings"]) == {"strong"}
        # An existing collection keeps its own layout; a default client says what it is.
        again = ClientVectors(standin.url, 8, collection="c")
        assert again.layout()["shards"] == 3 and again.count() == 29
    finally:
        vectors.close()


def test_shard_snapshots_round_trip_with_checksums(standin: Running, tmp_path: Path) -> None:
    source = ClientVectors(standin.url, 8, collection="src", cluster=LAYOUT)
    source.upsert(_points(40))
    folder = tmp_path / "set"
    folder.mkdir()
    info = source.snapshot_into(folder)
    assert info == {"kind": "qdrant-snapshot", "file": SHARDS_INDEX, "points": 40, "shards": 3}
    index = json.loads((folder / SHARDS_INDEX).read_text())
    assert [s["shard"] for s in index["shards"]] == [0, 1, 2]
    assert all(s["checked_against_server"] for s in index["shards"])
    assert sorted(p.name for p in folder.iterdir()) == [
        "vectors.shard-0.snapshot",
        "vectors.shard-1.snapshot",
        "vectors.shard-2.snapshot",
        SHARDS_INDEX,
    ]
    target = ClientVectors(standin.url, 8, collection="dst", cluster=LAYOUT)
    assert target.restore_from(folder / SHARDS_INDEX) == 40
    assert target.payloads([7]) == source.payloads([7])
    assert np.allclose(target.vectors([7])[7], source.vectors([7])[7])
    # A file changed after the backup is refused before anything is uploaded.
    tampered = folder / "vectors.shard-1.snapshot"
    tampered.write_text(tampered.read_text().replace('"h', '"x', 1))
    fresh = ClientVectors(standin.url, 8, collection="dst2", cluster=LAYOUT)
    with pytest.raises(VectorStoreError, match="checksum mismatch"):
        fresh.restore_from(folder / SHARDS_INDEX)
    # Another shard count cannot take the set.
    single = ClientVectors(standin.url, 8, collection="one")
    with pytest.raises(VectorStoreError, match="set qdrant_shards = 3"):
        single.restore_from(folder / SHARDS_INDEX)
    # A download that does not match Qdrant's checksum fails the snapshot.
    standin.configure(wrong_checksum=True)
    with pytest.raises(VectorStoreError, match="differs from Qdrant's checksum"):
        source.snapshot_into(tmp_path)


def test_a_backup_set_of_a_sharded_collection_restores_shard_by_shard(
    tmp_path: Path, standin: Running
) -> None:
    target_server = Running(free_port())
    try:
        name = "ephemera_memory_vectors"
        for server in (standin, target_server):  # both collections sharded three ways
            ClientVectors(server.url, 384, collection=name, cluster=LAYOUT).close()

        def settings(where: str, url: str) -> Settings:
            return Settings(
                data_dir=tmp_path / where,
                database_url=f"sqlite:///{tmp_path / where}.db",
                qdrant_url=url,
                embedding_model="fake-hash-384",
            )

        with Engine(settings("src", standin.url)) as engine:
            for i in range(12):
                engine.add(Draft(f"memory {i}"))
            made = create_backup(engine, tmp_path / "backups")
        assert made.manifest["vectors"]["file"] == SHARDS_INDEX
        assert made.manifest["vectors"]["shards"] == 3
        assert {f"vectors.shard-{k}.snapshot" for k in range(3)} <= set(made.manifest["files"])
        with Engine(settings("dst", target_server.url)) as restored:
            report = restore_backup(restored, made.path)
            assert report.vector_source == "qdrant-snapshot" and report.vectors_loaded == 12
            assert report.reembedded == 0 and restored.check().problems == 0
    finally:
        target_server.stop()


def test_cluster_settings_are_checked(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        "qdrant_shards = 6\nqdrant_replication_factor = 2\nqdrant_write_consistency = 2\n"
        'qdrant_write_ordering = "medium"\n'
    )
    loaded = load_settings(env={}, config_path=tmp_path / "c.toml")
    assert ClusterLayout.from_settings(loaded) == ClusterLayout(6, 2, 2, "medium")
    with pytest.raises(ConfigError, match="exceeds qdrant_replication_factor"):
        load_settings(
            env={"EPHEMERA_QDRANT_WRITE_CONSISTENCY": "3"}, config_path=tmp_path / "c.toml"
        )
    with pytest.raises(ConfigError, match="qdrant_shards"):
        load_settings(env={"EPHEMERA_QDRANT_SHARDS": "0"}, config_path=tmp_path / "c.toml")
