import numpy as np
import pytest

from src.features.cache import ArrayCache, cache_key
from src.files import file_identity


def test_key_depends_on_every_part_and_not_on_order():
    assert cache_key(a=1, b=[2, 3]) == cache_key(b=[2, 3], a=1)
    assert cache_key(a=1, b=[2, 3]) != cache_key(a=1, b=[3, 2])
    assert cache_key(a=1) != cache_key(a=2)


def test_file_identity_changes_when_the_file_does(tmp_path):
    path = tmp_path / "x.jpg"
    path.write_bytes(b"abc")
    first = file_identity(path)
    path.write_bytes(b"abcd")
    assert file_identity(path) != first


def test_round_trip_keeps_dtype_shape_and_order(tmp_path):
    cache = ArrayCache(tmp_path / "c")
    arrays = [np.arange(12, dtype=np.float16).reshape(3, 2, 2), np.ones((5, 1, 1), np.float16)]
    assert cache.load("k") is None
    cache.save("k", arrays)
    loaded = cache.load("k")
    assert [a.shape for a in loaded] == [(3, 2, 2), (5, 1, 1)]
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(arrays, loaded))


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    cache = ArrayCache(tmp_path)

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(KeyboardInterrupt):
        cache.save("k", [np.zeros(3)])
    assert list(tmp_path.iterdir()) == []
    assert cache.load("k") is None


def test_disabled_cache_stores_nothing():
    cache = ArrayCache(None)
    cache.save("k", [np.zeros(3)])
    assert cache.load("k") is None
