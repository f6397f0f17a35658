"""experiments/shot_types.py on tiny frames: three rows, ARIs in range, separable frames found by raw pixels."""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import shot_types  # noqa: E402

from src.data import FootballDataset  # noqa: E402
from src.frame import Frame  # noqa: E402
from src.models import create_model  # noqa: E402


def tiny_autoencoder():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return create_model("autoencoder", widths=[4, 8], code_channels=4).eval()


def test_three_rows_on_the_synthetic_frames(synthetic_root):
    frames = FootballDataset(str(synthetic_root), n_images=None, scale=32, warn_synthetic=False).frames()
    held_out = [i % 2 == 0 for i in range(len(frames))]
    results = shot_types.measure(frames, k=3, seeds=(0, 1), model=tiny_autoencoder(), pca_components=4, n_init=2,
                                 threads=1, held_out=held_out, chance_draws=20)
    lines = shot_types.table(results)
    assert len(lines) == 2 + 3
    assert results.rows[0].name == shot_types.RAW and results.rows[2].name == shot_types.CODE
    h, w = frames[0].shape
    assert [r.d for r in results.rows] == [h * w * 3, 4, 2 * 4]
    for row in results.rows:
        assert len(row.build_seconds) == len(row.kmeans_seconds) == 2
        for values in (*row.ari.values(), *row.ari_held_out.values()):
            assert len(values) == 2 and all(-1 <= v <= 1 for v in values)
    body = shot_types.section_text(results, command="cmd", data="synthetic")
    assert not any(line.startswith("## ") for line in body)  # report.splice would cut the section there
    assert "| " + shot_types.CODE + " |" in "\n".join(body)


def test_the_encoder_only_code_equals_the_models_code_map(synthetic_root):
    frames = FootballDataset(str(synthetic_root), n_images=3, scale=32, warn_synthetic=False).frames()
    model = tiny_autoencoder()
    codes = shot_types.code_maps(model, frames, batch_size=2, threads=1)
    from src.models.blocks import images_to_tensor

    with torch.inference_mode():
        expected = model.feature_maps(images_to_tensor(np.stack([f.image for f in frames])))["code"].numpy()
    np.testing.assert_allclose(codes, expected, atol=1e-6)


def separable_frames(n=8, h=24, w=32):
    """Half the frames with a small red box (1% of the frame), half with a large one (half of it)."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        image = np.empty((h, w, 3), np.uint8)
        image[:] = (40, 140, 50)
        mask = np.zeros((h, w), bool)
        if i % 2:
            mask[2:h - 2, 4:w // 2 + 4] = True
        else:
            mask[rng.integers(2, h - 4), rng.integers(2, w - 4)] = True
        image[mask] = (210, 40, 40)
        image = np.clip(image + rng.normal(0, 5, image.shape), 0, 255).astype(np.uint8)
        frames.append(Frame(image=image, mask=mask, image_id=i + 1, file_name=f"{i}.jpg", scale=1,
                            n_instances=1 + 4 * (i % 2)))
    return frames


def test_separable_frames_are_found_by_raw_pixels_and_the_missing_model_is_a_row():
    results = shot_types.measure(separable_frames(), k=2, seeds=(3, 4), model=None, pca_components=3, n_init=2,
                                 threads=1, chance_draws=20)
    raw = results.rows[0]
    assert raw.ari["player coverage"] == [1.0, 1.0]
    assert not results.rows[2].ran
    lines = shot_types.table(results)
    assert len(lines) == 5 and "not run" in lines[-1] and lines[-1].count("|") == lines[0].count("|")
    assert "fastest" in shot_types.answer(results)


def test_quantile_bins_are_terciles():
    assert list(shot_types.quantile_bins(np.arange(9), 3)) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
