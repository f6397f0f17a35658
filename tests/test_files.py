"""Files written whole or not at all (``src.files``)."""

from pathlib import Path

import pytest

from src.files import write_text_whole


@pytest.mark.parametrize("content", ["new text", b"\x89PNG\r\n\x1a\n\x00"], ids=["text", "bytes"])
def test_a_file_is_replaced_whole(tmp_path, content):
    path = tmp_path / "report.md"
    path.write_text("old")
    assert write_text_whole(path, content) == path
    written = path.read_bytes() if isinstance(content, bytes) else path.read_text()
    assert written == content and [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    path = tmp_path / "report.md"
    path.write_text("old")

    def full_disk(self, text):
        Path.open(self, "w").write(text[:3])  # what a full disk leaves: the start of the text
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_text_whole(path, "new text")
    monkeypatch.undo()
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.md"]
