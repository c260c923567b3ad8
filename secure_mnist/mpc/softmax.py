"""Softmax and cross-entropy on secret-shared logits, with nothing revealed on the way.

softmax(x)_i = e^(x_i - m) / sum_j e^(x_j - m), with m the row's maximum:

1. m by comparing every pair of classes at once (pairwise_max.py): 12 rounds for 10 classes,
   and nobody learns which class won.
2. d = x - m is <= 0, and exactly 0 at the maximum (m is exact), so exp only
   needs the range [lower, 0]: below lower = -(ln(scale) + 1), e^d is under half an ulp and
   the input is clipped there. The bits [d >= lower] come from the maximum's own comparison
   call (x_i - x_j >= lower for every j), so the clip is one product, not a comparison.
3. s = sum_j e^(d_j) lies in [1, C] (up to exp's error): a known range, so Newton's reciprocal
   starts well and needs no normalisation.
4. p = e^d * (1/s).

Cross-entropy with one-hot (shared) labels y is log s - sum_i y_i d_i, the log-sum-exp form:
the log is needed on [1, C] only, never of a probability near 0, and 1/s is already there, so
log s is a polynomial in s plus one in 1/s, with no comparison. Its gradient with respect to
the logits is p - y, on shares like everything else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from ..encoding import FixedPointEncoder
from ..profiling import timed
from . import approximations as approx
from .fixed_point import FixedPrecisionTensor, products_together
from .pairwise_max import max_rounds, row_max, row_max_and_floor
from .primitives.beaver import muls


LOSS_CATEGORY = "softmax and cross-entropy"


@dataclass(frozen=True)
class SoftmaxPlan:
    """The public choices for C classes at one precision, the rounds, and the error bounds."""

    classes: int
    exp: approx.ExpPlan
    reciprocal: approx.ReciprocalPlan
    log: approx.LogWithReciprocalPlan  # of s, from s and 1/s
    max_rounds: int  # the maximum of each row
    max_error: float  # of each probability, absolute
    loss_error: float  # of each row's cross-entropy, absolute

    @property
    def rounds(self) -> int:
        """Rounds of a softmax: the maximum (with the clip's bits), the clip's product, exp,
        reciprocal, the product p = e / s."""
        return self.max_rounds + 1 + self.exp.rounds + self.reciprocal.rounds + 1


@lru_cache(maxsize=16)
def softmax_plan(classes: int, encoder: FixedPointEncoder) -> SoftmaxPlan:
    if classes < 2:
        raise ValueError(f"softmax needs at least 2 classes, got {classes}")
    ulp = 1.0 / encoder.scale
    lower = -float(math.ceil(math.log(encoder.scale)) + 1)  # e^lower < ulp / e
    exp_plan = approx.exp_plan(lower, 0.0, encoder)
    e = exp_plan.max_error + math.exp(lower)  # clipped inputs: the true e^d is smaller still
    # s = e^0 + (C - 1) terms in [0, 1], each off by at most e
    s_lower, s_upper = 1.0 - e, classes * (1.0 + e)
    reciprocal_plan = approx.reciprocal_plan(s_lower, s_upper, encoder)
    log_plan = approx.log_with_reciprocal_plan(s_lower, s_upper, encoder)  # 1/s as reciprocal_plan's
    # p~ = (e_i + a)(1/s~ + b) + c with |a| <= e, |s~ - s| <= C e, |b| <= reciprocal error, |c| <= ulp:
    # |p~ - p| <= (e + p C e) / s~ + (1 + e) b + ulp, and p <= 1, s~ >= 1 - e.
    error = (e * (1 + classes)) / s_lower + (1 + e) * reciprocal_plan.max_error + ulp
    # loss = log s~ - y.d~: log's error, log's change with s (|ds| / s <= C e / s_lower), the product y.d
    loss_error = log_plan.max_error + classes * e / s_lower + ulp
    return SoftmaxPlan(classes, exp_plan, reciprocal_plan, log_plan, max_rounds(classes), error, loss_error)


@dataclass
class SoftmaxParts:
    """What softmax computes on the way, kept for the loss and the gradient."""

    probabilities: FixedPrecisionTensor
    total: FixedPrecisionTensor  # s = sum_j e^(d_j), in [1, C], shape (..., 1)
    inverse: FixedPrecisionTensor  # 1/s, within the plan's reciprocal error
    picked: FixedPrecisionTensor | None  # sum_i y_i d_i per row, when one-hot targets were given


def softmax_parts(x: FixedPrecisionTensor, one_hot: FixedPrecisionTensor | None = None) -> SoftmaxParts:
    """softmax along the last dimension; with one-hot targets, also y . d (in the same round as p)."""
    plan = softmax_plan(x.shape[-1], x.encoder)
    lower = plan.exp.lower
    maximum, in_range = row_max_and_floor(x, lower)  # in_range = [d >= lower], integer bits
    shifted = x - maximum
    # clip(d, lower) = lower + [d >= lower] (d - lower): a bit times a value, no rescaling
    clipped = x._wrap(muls([(in_range, (shifted - lower).child)])[0]) + lower  # type: ignore[arg-type]
    exps = approx.exp(clipped, lower, 0.0, clip_input=False)
    total = exps.sum(-1, keepdim=True)
    inverse = approx.reciprocal(total, plan.reciprocal.lower, plan.reciprocal.upper, clip_input=False)
    probabilities, picked = products_together([(exps, inverse),
                                               (one_hot, shifted) if one_hot is not None else None])
    return SoftmaxParts(probabilities, total, inverse, None if picked is None else picked.sum(-1))  # type: ignore[arg-type]


def softmax(x: FixedPrecisionTensor) -> FixedPrecisionTensor:
    """softmax along the last dimension, within softmax_plan(C, encoder).max_error per entry."""
    return softmax_parts(x).probabilities


@timed(LOSS_CATEGORY, within=True)
def cross_entropy(x: FixedPrecisionTensor, one_hot: FixedPrecisionTensor) -> tuple[FixedPrecisionTensor, FixedPrecisionTensor]:
    """(the mean cross-entropy over the rows, still shared; the probabilities, for the gradient).

    Each row's loss is log s - sum_i y_i d_i, within softmax_plan(C, encoder).loss_error.
    """
    if one_hot.shape != x.shape:
        raise ValueError(f"cross_entropy needs one-hot targets shaped like the logits: {tuple(one_hot.shape)} "
                         f"and {tuple(x.shape)}")
    plan = softmax_plan(x.shape[-1], x.encoder)
    parts = softmax_parts(x, one_hot)
    log_total = approx.log_with_reciprocal(parts.total, parts.inverse, plan.log.lower, plan.log.upper)
    per_row = log_total.squeeze(-1) - parts.picked  # type: ignore[operator]
    return per_row.mean(), parts.probabilities
