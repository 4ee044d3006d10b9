"""The oracle deblurring baseline of ``trainer eval``: the defocused input deconvolved with
the dataset's *true* sigma map and PSF (:func:`defocuskit.deconvolve`, ``levels`` method),
and the defocused input itself, scored against the AiF with the AiF head's own metrics
(:func:`trainer.metrics.image_metrics`) on the same frames and pixels. An AiF head is judged
against both: the input is the floor, the oracle what knowing the blur exactly buys a
classical method.

Cost: one ``levels`` deconvolution per frame on the CPU, about 0.5 s per sigma level of
0.5 px at 500 x 741 (see docs/deconvolution.md), so a few seconds per frame.
"""

from __future__ import annotations

import numpy as np

from defocuskit.deblur import deconvolve
from trainer.metrics import image_metrics

__all__ = ["ORACLE_KEYS", "oracle_metrics"]

ORACLE_KEYS = ("oracle_psnr", "oracle_ssim", "input_psnr", "input_ssim")


def oracle_metrics(dataset, psf: str, progress=None) -> dict:
    """Mean PSNR / SSIM over the frames of ``dataset`` of the oracle deconvolution and of the
    defocused input.

    Parameters
    ----------
    dataset : trainer.data.DefocusDataset
        Whole frames with ``defocused``, ``aif`` and ``sigma`` (pixels, already scaled for a
        resize), as ``trainer eval`` scores them.
    psf : {"gaussian", "disc"}
        The PSF the dataset was rendered with.
    progress : trainer.progress.Progress, optional
        Told each frame.

    Returns
    -------
    dict
        :data:`ORACLE_KEYS` (dB and SSIM, means over frames), ``oracle_psf`` and
        ``oracle_method``.
    """
    sums = dict.fromkeys(ORACLE_KEYS, 0.0)
    for i in range(len(dataset)):
        item = dataset[i]
        # (3, h, w) uint8 -> (h, w, 3) float32 in [0, 1], as the AiF head is scored
        blurred = np.ascontiguousarray(item["defocused"].numpy().transpose(1, 2, 0),
                                       dtype=np.float32) / np.float32(255.0)
        aif = item["aif"].numpy().astype(np.float32) / np.float32(255.0)
        sigma = item["sigma"].numpy()[0]
        deblurred = deconvolve(blurred, sigma, psf=psf)
        for prefix, img in (("oracle_", deblurred), ("input_", blurred)):
            m = image_metrics(img.transpose(2, 0, 1), aif)
            sums[prefix + "psnr"] += m["psnr"]
            sums[prefix + "ssim"] += m["ssim"]
        if progress is not None:
            progress.update(1)
    n = max(len(dataset), 1)
    return {**{k: v / n for k, v in sums.items()}, "oracle_psf": psf,
            "oracle_method": "levels"}
