import csv
from types import SimpleNamespace

import pytest

from src.frame_table import FrameTable


def scored(image_id, **metrics):
    return SimpleNamespace(frame=SimpleNamespace(image_id=image_id, file_name=f"{image_id}.jpg"), metrics=metrics,
                           seconds={"load": 0.5})


def test_rows_come_back_in_order_with_the_union_of_columns(tmp_path):
    with FrameTable() as table:
        table.add(scored(0, n_components=2.0))
        table.add(scored(1, n_components=1.0, dice=0.5, silhouette=float("nan")))
        assert len(table) == 2
        assert [row["image_id"] for row in table.rows()] == [0, 1]
        assert table.columns() == ["image_id", "file_name", "n_components", "seconds_load", "dice", "silhouette"]
        table.write_csv(tmp_path / "t.csv")
    with open(tmp_path / "t.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["dice"] == "" and rows[1]["dice"] == "0.5" and rows[1]["silhouette"] == ""


def test_a_reader_stopped_half_way_does_not_overwrite_rows():
    with FrameTable() as table:
        for i in range(3):
            table.add(scored(i, dice=0.1 * i))
        next(table.rows())
        table.add(scored(3, dice=0.3))
        assert [row["image_id"] for row in table.rows()] == [0, 1, 2, 3]


def test_a_closed_table_is_gone():
    table = FrameTable()
    table.add(scored(0))
    table.close()
    with pytest.raises(ValueError, match="closed file"):
        table.add(scored(1))
