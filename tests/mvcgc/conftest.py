import pytest

from mvcgc_testing import TINY, clips


@pytest.fixture
def stage1_rgb(tmp_path_factory):
    """A finished two-step stage-1 RGB run (path of its checkpoint)."""
    from mvcgc.train import pretrain

    out = tmp_path_factory.mktemp("stage1_rgb")
    return pretrain(clips(("rgb",)), stage="init", view="rgb", out_dir=out, steps=2, **TINY).checkpoint
