"""HED from the shared weights: loads every tensor, keeps the input size, finds edges."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training.models.hed import HED  # noqa: E402
from training.paths import weights_path  # noqa: E402


@pytest.fixture(scope="module")
def hed():
    path = weights_path("hed_bsds500_vgg16.pth")
    if not path.is_file():
        pytest.skip(f"{path} not found (shared weights absent)")
    model = HED()
    model.load_hed_weights(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


@pytest.mark.parametrize("size", [(321, 481), (17, 23), (64, 64)])
def test_output_has_the_input_size(hed, size):
    x = torch.zeros(1, 3, *size)
    with torch.inference_mode():
        out = hed(x)
    assert len(out.sides) == 5 and all(o.shape == (1, 1, *size) for o in [out.fused, *out.sides])


def test_responds_to_a_step_edge(hed):
    img = np.zeros((64, 64, 3), np.float32)
    img[:, 32:] = 255
    x = torch.from_numpy(img - np.array(HED.INPUT.mean, np.float32)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        prob = torch.sigmoid(hed(x).fused)[0, 0].numpy()
    column_strength = prob[16:48].mean(axis=0)
    assert abs(int(column_strength.argmax()) - 32) <= 1
    assert column_strength[31:33].max() > 0.5 > column_strength[:20].max()


def test_weights_file_keys_all_used():
    model = HED()
    expected = {f"blocks.{b}.{j}.{p}" for b, n in enumerate((2, 2, 3, 3, 3)) for j in range(n) for p in ("weight", "bias")}
    expected |= {f"dsn.{i}.{p}" for i in range(5) for p in ("weight", "bias")} | {"fuse.weight", "fuse.bias"}
    got = {k.replace("backbone.", "") for k in model.state_dict()}
    assert got == expected
