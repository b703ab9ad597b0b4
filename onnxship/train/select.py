"""Which candidate to ship when several score alike: the cheapest one within the CV noise of the best.

A candidate is a model family, or one size of a model (a number of boosting trees). The rules, in
order:
1. The best is the highest mean CV score (the first listed wins a tie).
2. A candidate is within the noise of the best when, fold by fold (all candidates are scored on the
   same folds), it loses on average at most ``noise_sigmas`` standard errors of that paired loss,
   and at most ``max_score_loss`` in any case.
3. Among those, the lowest cost wins (a tie goes to the higher mean score, then to the first
   listed); with ``prefer_cheaper`` off, the best always wins.
4. When a candidate within the noise has no cost (a model of your own whose size is not counted:
   ``onnxship.train.sizes.model_cost`` returns None), costs are not weighed and the best ships.
The cost is what the exported model pays per row (``onnxship.train.sizes``: tree nodes or weights), so a
model that is as good as the best within the noise but cheaper to serve is the one shipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Candidate:
    name: str
    fold_scores: list[float]
    cost: float | None = None  # None: not measured (only candidates within the noise need one)

    @property
    def mean(self) -> float:
        return sum(self.fold_scores) / len(self.fold_scores)


@dataclass(frozen=True)
class Selection:
    choice: str
    best: str
    within_noise: list[str]
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "choice": self.choice,
            "best_by_score": self.best,
            "within_noise": self.within_noise,
            "reasons": self.reasons,
        }


def paired_loss(best: list[float], other: list[float]) -> tuple[float, float]:
    """Mean fold-by-fold loss of ``other`` against ``best`` and its standard error."""
    if len(best) != len(other):
        raise ValueError("candidates must be scored on the same folds")
    diffs = [b - o for b, o in zip(best, other, strict=True)]
    n = len(diffs)
    mean = sum(diffs) / n
    variance = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(variance / n)


def best_of(candidates: list[Candidate]) -> Candidate:
    return max(candidates, key=lambda c: c.mean)  # max keeps the first of equal means


def within_noise(candidates: list[Candidate], noise_sigmas: float, max_score_loss: float) -> list[str]:
    """Names of the candidates within the CV noise of the best (rule 2), the best included."""
    best = best_of(candidates)
    names = []
    for c in candidates:
        loss, error = paired_loss(best.fold_scores, c.fold_scores)
        if c is best or loss <= min(noise_sigmas * error, max_score_loss):
            names.append(c.name)
    return names


def choose(
    candidates: list[Candidate],
    noise_sigmas: float,
    max_score_loss: float,
    prefer_cheaper: bool = True,
    what: str = "candidate",
) -> Selection:
    """The candidate to ship, with the reasons (rules in the module docstring)."""
    if not candidates:
        raise ValueError("no candidates to choose from")
    best = best_of(candidates)
    near = within_noise(candidates, noise_sigmas, max_score_loss)
    reasons = [f"best {what} by mean CV score: {best.name} ({best.mean:.4f})"]
    if not prefer_cheaper or len(near) == 1:
        why = "cost not weighed (prefer_cheaper off)" if not prefer_cheaper else "no other within the noise"
        return Selection(best.name, best.name, near, [*reasons, f"chose {best.name}: {why}"])
    by_name = {c.name: c for c in candidates}
    unknown = [n for n in near if by_name[n].cost is None]
    if unknown:
        # Rule 4: a cost that cannot be counted (a model of your own) is not guessed; the best ships.
        why = f"no cost to weigh for {', '.join(unknown)} (a model whose size onnxship cannot count)"
        return Selection(best.name, best.name, near, [*reasons, f"chose {best.name}: {why}"])
    order = [c.name for c in candidates]
    choice = min(near, key=lambda n: (by_name[n].cost, -by_name[n].mean, order.index(n)))
    for name in near:
        if name == best.name:
            continue
        loss, error = paired_loss(best.fold_scores, by_name[name].fold_scores)
        reasons.append(
            f"{name} within the noise: CV {by_name[name].mean:.4f}, paired loss {loss:.4f} <= "
            f"min({noise_sigmas:g} x standard error {error:.4f}, {max_score_loss:g})"
        )
    chosen = by_name[choice]
    if choice == best.name:
        reasons.append(
            f"chose {choice}: the best is also the cheapest within the noise (cost {chosen.cost:g})"
        )
    else:
        reasons.append(
            f"chose {choice}: cheapest within the noise (cost {chosen.cost:g} vs {by_name[best.name].cost:g} "
            f"for {best.name}, {by_name[best.name].cost / chosen.cost:.1f}x less)"
        )
    return Selection(choice, best.name, near, reasons)
