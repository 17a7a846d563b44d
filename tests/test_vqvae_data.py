"""CropDataset / TemplateBatchSampler / collate_crops: template shapes, epochs, DDP shards, augmentation."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tests.test_encode_decode import SIZES, write_crops
from vqvae.data import CropDataset, FailedCrop, TemplateBatchSampler, augment_image, augment_pair, collate_crops
from vqvae.templates import choose_template, image_to_tensor_array

MAX_LENGTH, DOWNSAMPLE = 100, 8  # 20 strip rows: every test crop (up to 8:1) fits


@pytest.fixture
def paths(tmp_path):
    return [str(tmp_path / name) for name in write_crops(tmp_path, 23)]


def test_items_are_fitted_to_their_templates(paths):
    dataset = CropDataset(paths, MAX_LENGTH, DOWNSAMPLE)
    assert len(dataset) == len(paths) and dataset.failures == []
    for i in range(len(dataset)):
        image, index = dataset[i]
        height, width = SIZES[i % len(SIZES)]
        template = choose_template(width, height, MAX_LENGTH)
        assert dataset.templates[i] == template and index == i
        assert image.shape == (3, *template.box(DOWNSAMPLE)) and image.dtype == torch.float32
        assert -1 <= image.min() and image.max() <= 1


def test_batches_share_one_template_and_cover_every_item_once(paths):
    dataset = CropDataset(paths, MAX_LENGTH, DOWNSAMPLE)
    sampler = TemplateBatchSampler(dataset, batch_size=3, shuffle=True, seed=1)
    epoch0, epoch1 = list(sampler), list(sampler)  # each iter() is the next epoch
    for epoch, batches in enumerate([epoch0, epoch1]):
        items = [key - epoch * len(dataset) for batch in batches for key in batch]
        assert sorted(items) == list(range(len(dataset)))
        for batch in batches:
            assert len({dataset.templates[key % len(dataset)] for key in batch}) == 1
    assert [[k % len(dataset) for k in b] for b in epoch0] != [[k % len(dataset) for k in b] for b in epoch1]
    again = TemplateBatchSampler(dataset, batch_size=3, shuffle=True, seed=1)
    assert list(again) == epoch0  # same seed, same order
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=again, collate_fn=collate_crops)
    for images, indices in loader:
        assert images.shape[0] == indices.shape[0] and images.ndim == 4


@pytest.mark.parametrize("num_replicas", [2, 3])
def test_ddp_shards_are_equal_sized_and_cover_everything(paths, num_replicas):
    dataset = CropDataset(paths, MAX_LENGTH, DOWNSAMPLE)
    shards = [list(TemplateBatchSampler(dataset, 4, shuffle=True, seed=3, num_replicas=num_replicas, rank=rank))
              for rank in range(num_replicas)]
    assert len({len(shard) for shard in shards}) == 1
    assert len(shards[0]) == len(TemplateBatchSampler(dataset, 4, num_replicas=num_replicas, rank=0))
    covered = {key for shard in shards for batch in shard for key in batch}
    assert covered == set(range(len(dataset)))
    with pytest.raises(ValueError, match="rank=2"):
        TemplateBatchSampler(dataset, 4, num_replicas=2, rank=2)


def test_augmentation_is_seeded_per_index_and_repeat(paths):
    dataset = CropDataset(paths, MAX_LENGTH, DOWNSAMPLE, augment=True, seed=5)
    n = len(dataset)
    first, again = dataset[2][0], CropDataset(paths, MAX_LENGTH, DOWNSAMPLE, augment=True, seed=5)[2][0]
    torch.testing.assert_close(first, again)
    assert not torch.equal(first, dataset[n + 2][0])  # next epoch / repeat
    assert dataset[n + 2][1] == 2  # the index is the file's row whatever the repeat
    assert not torch.equal(first, CropDataset(paths, MAX_LENGTH, DOWNSAMPLE)[2][0])
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 60, 3), dtype=np.uint8)
    out = augment_image(image, np.random.default_rng(1))
    assert out.dtype == np.uint8 and out.ndim == 3 and abs(out.shape[1] - 60) <= 8


def test_bad_files_are_excluded_at_construction_and_counted(paths, tmp_path, caplog):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not an image")
    paths = paths[:4] + [str(tmp_path / "missing.png"), str(corrupt)] + paths[4:]
    dataset = CropDataset(paths, MAX_LENGTH, DOWNSAMPLE)
    assert len(dataset) == len(paths) - 2
    assert [f.index for f in dataset.failures] == [4, 5]
    assert "missing.png" in dataset.failures[0].reason and "corrupt.png" in dataset.failures[1].reason
    assert [row["row"] for row in dataset.report.rows] == [4, 5]
    assert "2 of" in caplog.text
    assert dataset[4][1] == 6  # items after the excluded files keep their original row


def test_collate_drops_files_that_fail_on_decode(paths, tmp_path):
    # A valid PNG header with a cut-off body: the size is readable, the pixels are not.
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(open(paths[0], "rb").read()[:60])
    dataset = CropDataset([paths[0], str(truncated), paths[5]], MAX_LENGTH, DOWNSAMPLE)
    assert len(dataset) == 3  # header fine
    batch = collate_crops([dataset[0], dataset[1], dataset[2]])
    images, indices = batch
    assert indices.tolist() == [0, 2] and images.shape[0] == 2
    assert len(batch.failures) == 1 and isinstance(batch.failures[0], FailedCrop)
    assert "truncated.png" in batch.failures[0].reason
    empty = collate_crops([dataset[1]])
    assert empty.images.shape[0] == 0 and empty.indices.numel() == 0


def test_clean_targets_are_fitted_and_moved_with_their_images(tmp_path):
    """A target is the item's third tensor, in the image's strip; augmentation moves it with its image (and
    leaves its pixels clean), so the two stay aligned where another draw of the shift would not."""
    rng = np.random.default_rng(0)
    paths, targets = [], []
    for i, (height, width) in enumerate(SIZES * 2):
        target = np.full((height, width), 255, np.uint8)
        y, x = rng.integers(0, height // 2), rng.integers(0, width // 2)
        target[y:y + height // 2, x:x + width // 2] = 0  # one dark block: "ink"
        image = np.repeat(target[:, :, None], 3, axis=2)
        image[:, :, 0] = np.where(target == 0, 90, 230)  # the crop is coloured, its target is not
        cv2.imwrite(str(tmp_path / f"image{i}.png"), image[:, :, ::-1])
        cv2.imwrite(str(tmp_path / f"target{i}.png"), target)
        paths.append(str(tmp_path / f"image{i}.png"))
        targets.append(str(tmp_path / f"target{i}.png"))
    dataset = CropDataset(paths, MAX_LENGTH, DOWNSAMPLE, augment=True, seed=3, target_paths=targets)
    batch = collate_crops([dataset[0], dataset[len(SIZES)]])  # two items of one size
    assert len(batch) == 3 and batch[2].shape == batch[0].shape  # (images, indices, targets), same template
    for key in range(len(dataset)):
        image, index, target = dataset[key]
        assert image.shape == target.shape and index == key
        ink_image, ink_target = image[0] < 0, target[0] < 0
        content = (image[0] != target[0]) | (target[0].abs() > 0.01)  # PAD_RGB (127) after the strip's end
        assert (ink_image != ink_target)[content].float().mean() < 0.03, key
        pure = (target[0] == 1.0) | (target[0] <= -0.99)  # black or white but where resizing blends an edge
        assert pure[content].float().mean() > 0.75, key
    image = cv2.imread(paths[3])[:, :, ::-1].copy()
    target = cv2.imread(targets[3], cv2.IMREAD_GRAYSCALE)
    _, same = augment_pair(image, target, np.random.default_rng(1))
    assert same.shape == augment_image(image, np.random.default_rng(1)).shape[:2]
    with pytest.raises(ValueError, match="one target per image"):
        CropDataset(paths, MAX_LENGTH, DOWNSAMPLE, target_paths=targets[:-1])


def test_a_framed_crop_is_fitted_by_its_frames_inside_in_files_and_in_memory(tmp_path):
    """The dataset (files) and encoder_input (arrays) cut a crop to its frame's inside before choosing its template:
    a frame with wide margins around a short word would otherwise shrink its glyphs and add rows."""
    from tests.test_templates import _rgb, _strokes
    from vqvae.encoding import encoder_input
    from vqvae.plumbing.io import save_image
    from vqvae.templates import cut_to_frame, fit_to_template

    text = _strokes(40, 120)
    framed = np.full((100, 200), 255, np.uint8)
    framed[30:70, 40:160] = text
    cv2.rectangle(framed, (30, 22), (169, 77), 0, 3)
    save_image(tmp_path / "framed.png", _rgb(framed))
    dataset = CropDataset([str(tmp_path / "framed.png")], 64, 8, line_codes=4)
    inside = cut_to_frame(_rgb(framed), dataset.frames[0])
    assert 40 <= inside.shape[0] <= 56 and 120 <= inside.shape[1] <= 140
    assert dataset.templates[0] == choose_template(inside.shape[1], inside.shape[0], 64, 4)
    assert dataset.templates[0].rows > choose_template(200, 100, 64, 4).rows
    expected = fit_to_template(inside, dataset.templates[0], 8)
    np.testing.assert_array_equal(encoder_input(_rgb(framed), 64, 8, 4), expected)
    np.testing.assert_allclose(dataset[0][0].numpy(), image_to_tensor_array(expected), atol=1e-6)
