"""Untrained networks for the conversion tests: the real architectures, random weights and BatchNorm statistics."""


def random_student(seed: int = 0, affine: bool = False):
    """The SO Model student with random BatchNorm statistics (and, with ``affine``, random BatchNorm scales/shifts).

    Fresh BatchNorms are identities, which would leave folding nothing to fold
    and the network near-constant; a fresh clone has no trained checkpoint.
    """
    import torch

    from training.checkpoint import build_model

    torch.manual_seed(seed)
    m = build_model({"kind": "student", "preset": "so-model"}).eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
                if affine:
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.1, 0.1)
    return m
