"""Where the border fit's warm-up spends its gradients, and whether a better start helps: NUTS (nutpie, the spec's
sampler settings unless overridden) from PyMC's own initial point, from single-path Pathfinder's approximation
(Zhang, Carpenter, Gelman & Vehtari 2022, JMLR 23(306)), or in coordinates whitened by a previous fit's
posterior (its unconstrained draws' mean and covariance: a dense mass matrix learnt beforehand) or by the
Laplace approximation at the mode. Prints one JSON
line per run: leapfrog steps in each quarter of the warm-up and in sampling, divergences, the gate's verdict,
the lowest bulk ESS, and ESS per 1,000 gradients. Results: docs/performance.md.

    ./run python scripts/border_start_trials.py --save-draws /tmp/draws.npy       # from PyMC's initial point
    ./run python scripts/border_start_trials.py --start pathfinder
    ./run python scripts/border_start_trials.py --start previous --previous /tmp/draws.npy --tune 100

An experiment, not part of the fit: the one cold-start win it looked for was not found (docs/performance.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import time
from typing import Any

import numpy as np
import scipy.optimize


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclasses.dataclass(frozen=True)
class PathfinderResult:
    """The Gaussian approximation chosen along the L-BFGS path: its mean and Cholesky factor, the ELBO of
    every iterate scored, the chosen iterate, and the evaluations of log p (each with its gradient) spent."""

    mean: np.ndarray
    chol: np.ndarray
    elbo: np.ndarray
    chosen: int
    evaluations: int

    def draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws of the chosen Gaussian (n × dim)."""
        z = rng.standard_normal((n, self.mean.size))
        return self.mean[None, :] + z @ self.chol.T


def diagonal_update(alpha: np.ndarray, s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The diagonal inverse-Hessian estimate after one pair (Gilbert & Lemaréchal 1989, as Pathfinder uses it):
    with a = yᵀ diag(α) y, b = yᵀ s and c = sᵀ diag(α)⁻¹ s, 1/α' = a/(b α) + y²/b − a s²/(b c α²). Kept as it was
    when the update is not positive and finite."""
    a, b, c = y @ (alpha * y), y @ s, s @ (s / alpha)
    inv = a / (b * alpha) + y * y / b - a * s * s / (b * c * alpha * alpha)
    new = 1.0 / inv
    return new if np.all(np.isfinite(new)) and np.all(new > 0) else alpha


def _inverse_hessian(
    alpha: np.ndarray, s_pairs: list[np.ndarray], y_pairs: list[np.ndarray]
) -> np.ndarray | None:
    """Dense BFGS inverse Hessian (of −log p) from the last pairs s = Δx, y = Δ∇(−log p), started from the
    diagonal ``alpha`` (`diagonal_update` over the whole path): a scalar start would give every direction the
    pairs have not explored the same scale, and the border model's scales span two orders of magnitude. None
    when no pair has positive curvature."""
    pairs = [
        (s, y)
        for s, y in zip(s_pairs, y_pairs, strict=True)
        if s @ y > 1e-10 * (y @ y) and np.isfinite(s @ y)
    ]
    if not pairs:
        return None
    h = np.diag(alpha)
    eye = np.eye(alpha.size)
    for s, y in pairs:
        rho = 1.0 / (y @ s)
        left = eye - rho * np.outer(s, y)
        h = left @ h @ left.T + rho * np.outer(s, s)
    return 0.5 * (h + h.T)


def pathfinder(
    logp_and_grad: Any,
    start: np.ndarray,
    seed: int,
    *,
    max_iterations: int = 1000,
    history: int = 6,
    elbo_draws: int = 6,
    score_every: int = 5,
    patience: int = 20,
) -> PathfinderResult:
    """Single-path Pathfinder on ``logp_and_grad(x) -> (log p, ∇ log p)`` from ``start``: L-BFGS on −log p
    (``history`` pairs), the Gaussian approximation of each iterate scored by its ELBO from ``elbo_draws``
    draws, every ``score_every`` iterates (and the last); it stops ``patience`` scores after the best ELBO
    so far, or when L-BFGS converges or has made ``max_iterations`` iterations. Raises
    RuntimeError when no iterate gives a finite ELBO (the density cannot be approximated from ``start``)."""
    rng = np.random.default_rng(seed)
    dim = start.size
    evaluations = 0
    cache: dict[bytes, tuple[float, np.ndarray]] = {}

    def evaluate(x: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal evaluations
        key = x.tobytes()
        if key not in cache:
            evaluations += 1
            value, grad = logp_and_grad(np.ascontiguousarray(x, dtype=float))
            cache.clear()  # L-BFGS asks for the last point again at most
            cache[key] = (float(value), np.asarray(grad, float))
        return cache[key]

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = evaluate(x)
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros_like(x)  # L-BFGS's line search backs off
        return -value, -grad

    iterates: list[tuple[np.ndarray, np.ndarray]] = []
    value, grad = evaluate(start)
    if np.isfinite(value):
        iterates.append((start.copy(), grad.copy()))
    best: tuple[float, np.ndarray, np.ndarray, int] | None = None
    elbos: list[float] = []
    alpha = np.ones(dim)

    class _Stop(Exception):
        pass

    def record(x: np.ndarray) -> None:
        nonlocal alpha
        v, g = evaluate(x)
        if not np.isfinite(v):
            return
        if iterates:
            step, change = x - iterates[-1][0], -(g - iterates[-1][1])
            if step @ change > 1e-10 * (change @ change):
                alpha = diagonal_update(alpha, step, change)
        iterates.append((x.copy(), g.copy()))
        if len(iterates) % score_every == 0:
            score()

    def score() -> None:
        nonlocal best
        if len(iterates) < 2:
            return
        x, g = iterates[-1]
        recent = iterates[-(history + 1) :]
        s_pairs = [b[0] - a[0] for a, b in zip(recent[:-1], recent[1:], strict=True)]
        y_pairs = [-(b[1] - a[1]) for a, b in zip(recent[:-1], recent[1:], strict=True)]
        h = _inverse_hessian(alpha, s_pairs, y_pairs)
        if h is None:
            elbos.append(-np.inf)
            return
        try:
            chol = np.linalg.cholesky(h)
        except np.linalg.LinAlgError:
            elbos.append(-np.inf)
            return
        mean = x + h @ g  # a Newton step on −log p
        z = rng.standard_normal((elbo_draws, dim))
        log_q = -0.5 * (z * z).sum(1) - np.log(np.diag(chol)).sum()
        log_p = np.array([evaluate(mean + chol @ zi)[0] for zi in z])
        elbo = float(np.mean(log_p - log_q)) if np.all(np.isfinite(log_p)) else -np.inf
        elbos.append(elbo)
        if best is None or elbo > best[0]:
            best = (elbo, mean, chol, len(elbos) - 1)
        elif len(elbos) - 1 - best[3] >= patience:
            raise _Stop

    try:
        scipy.optimize.minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            callback=record,
            options={"maxiter": max_iterations, "maxcor": history},
        )
        if len(iterates) % score_every:
            score()  # the last iterate
    except _Stop:
        pass
    if best is None or not np.isfinite(best[0]):
        raise RuntimeError(
            f"Pathfinder: no finite ELBO in {len(elbos)} iterates from the starting point; "
            "the sampler starts from the model's own initial point instead"
        )
    _, mean, chol, chosen = best
    return PathfinderResult(mean, chol, np.array(elbos), chosen, evaluations)


def pathfinder_start(compiled: Any, seed: int) -> tuple[Any, dict[str, Any]]:
    """`compiled` with its chains started at draws of Pathfinder's approximation, run from the model's own
    initial point."""
    logp = compiled._make_logp_func()
    shared = compiled._shared_data
    start = np.asarray(compiled._make_initial_points(seed), float)
    t, c = time.perf_counter(), cpu_seconds()
    result = pathfinder(lambda x: logp(x, **shared), start, seed)
    info = {
        "pathfinder_wall_s": round(time.perf_counter() - t, 1),
        "pathfinder_cpu_s": round(cpu_seconds() - c, 1),
        "pathfinder_gradients": result.evaluations,
        "pathfinder_elbo": round(float(result.elbo[result.chosen]), 1),
    }

    def initial_point(chain_seed: int) -> np.ndarray:
        return result.draws(1, np.random.default_rng([seed, int(chain_seed)]))[0]

    return dataclasses.replace(compiled, _make_initial_points=initial_point), info


def laplace(compiled: Any, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The mode of the unconstrained log density (L-BFGS from the model's initial point, at most 3,000
    iterations) and a factor L of the inverse of its Hessian there (central differences of the gradient,
    eigenvalues below 10⁻¹⁰ of the largest raised to it), with what was found on the way."""
    logp = compiled._make_logp_func()
    shared = compiled._shared_data
    count = [0]

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        count[0] += 1
        value, grad = logp(x, **shared)
        if not np.isfinite(value):
            return 1e300, np.zeros_like(x)
        return -value, -np.asarray(grad)

    start = np.asarray(compiled._make_initial_points(seed), float)
    t, c = time.perf_counter(), cpu_seconds()
    fit = scipy.optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 3000, "maxcor": 10, "ftol": 1e-13, "gtol": 1e-6},
    )
    mode, dim, eps = fit.x, fit.x.size, 1e-4
    hessian = np.empty((dim, dim))
    for i in range(dim):
        step = np.zeros(dim)
        step[i] = eps
        up, down = logp(mode + step, **shared)[1], logp(mode - step, **shared)[1]
        hessian[:, i] = -(np.asarray(up) - np.asarray(down)) / (2 * eps)
    values, vectors = np.linalg.eigh(0.5 * (hessian + hessian.T))
    info = {
        "laplace_iterations": int(fit.nit),
        "laplace_converged": bool(fit.success),
        "laplace_gradients": count[0] + 2 * dim,
        "laplace_wall_s": round(time.perf_counter() - t, 1),
        "laplace_cpu_s": round(cpu_seconds() - c, 1),
        "hessian_eigenvalues": [float(values.min()), float(values.max())],
        "hessian_negative": int((values <= 0).sum()),
    }
    values = np.maximum(values, values.max() * 1e-10)
    return mode, vectors / np.sqrt(values), info


def whitened(compiled: Any, m: np.ndarray, chol: np.ndarray) -> Any:
    """`compiled` sampled in y, x = m + L y (``chol`` = L): with m and L Lᵀ the mean and covariance of a
    previous fit's unconstrained draws, NUTS's identity mass matrix is that fit's dense one. The draws it
    returns are of the model's own parameters (the expansion maps y back)."""

    def make_logp_func() -> Any:
        inner = compiled._make_logp_func()

        def logp(y: np.ndarray, **shared: Any) -> tuple[float, np.ndarray]:
            value, grad = inner(m + chol @ y, **shared)
            return value, np.ascontiguousarray(chol.T @ np.asarray(grad))

        return logp

    def make_expand_func(seed1: int, seed2: int, chain: int) -> Any:
        inner = compiled._make_expand_func(seed1, seed2, chain)
        return lambda y, **shared: inner(m + chol @ y, **shared)

    return dataclasses.replace(
        compiled,
        _make_logp_func=make_logp_func,
        _make_expand_func=make_expand_func,
        _make_initial_points=lambda seed: np.random.default_rng(seed).normal(0.0, 1.0, m.size),
        _raw_logp_fn=None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="models/border.toml")
    parser.add_argument(
        "--start",
        choices=("support_point", "pathfinder", "previous", "laplace"),
        default="support_point",
    )
    parser.add_argument(
        "--previous", help="unconstrained draws of a previous fit (.npy, --save-draws)"
    )
    parser.add_argument("--save-draws", help="save this run's unconstrained draws here (.npy)")
    parser.add_argument("--tune", type=int)
    parser.add_argument("--draws", type=int)
    parser.add_argument("--target-accept", type=float)
    parser.add_argument("--adaptation", choices=("diag", "low_rank"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    import arviz as az
    import nutpie

    from estim.run.data import family_of, load_data
    from estim.run.diagnostics import check
    from estim.run.sampler import compile_model
    from estim.run.spec import read_spec

    spec = read_spec(args.spec)
    family = family_of(spec)
    model = family.build(load_data(spec), dict(spec.priors), **spec.options)
    compiled = compile_model(model, spec.sampler.backend)
    s = spec.sampler
    settings = {
        "draws": args.draws or s.draws,
        "tune": args.tune if args.tune is not None else s.tune,
        "chains": s.chains,
        "target_accept": args.target_accept or s.target_accept,
        "adaptation": args.adaptation or ("low_rank" if s.adaptation == "low_rank" else "diag"),
    }
    report: dict[str, Any] = {"start": args.start, **settings}
    if args.start == "pathfinder":
        compiled, info = pathfinder_start(compiled, args.seed)
        report.update(info)
    elif args.start == "previous":
        if not args.previous:
            parser.error("--start previous needs --previous DRAWS.npy")
        draws = np.load(args.previous)
        compiled = whitened(compiled, draws.mean(0), np.linalg.cholesky(np.cov(draws.T)))
    elif args.start == "laplace":
        mode, factor, info = laplace(compiled, args.seed)
        report.update(info)
        print(json.dumps(info), flush=True)
        compiled = whitened(compiled, mode, factor)
    t, c = time.perf_counter(), cpu_seconds()
    idata = nutpie.sample(
        compiled,
        seed=args.seed,
        progress_bar=False,
        store_unconstrained=bool(args.save_draws),
        **settings,
    )
    report.update(wall_s=round(time.perf_counter() - t, 1), cpu_s=round(cpu_seconds() - c, 1))
    if args.save_draws:
        draws = idata["sample_stats"]["unconstrained_draw"].values
        np.save(args.save_draws, draws.reshape(-1, draws.shape[-1]))
    posterior = idata["posterior"].to_dataset()
    names = [v for v in posterior.data_vars if v not in set(family.gate_skip)]
    verdict = check(idata, var_names=names)
    ess = az.ess(posterior[names], method="bulk")
    lowest = min((float(ess[v].min()), v) for v in names)
    warm = idata["warmup_sample_stats"]["n_steps"].values
    steps = idata["sample_stats"]["n_steps"].values
    quarter = warm.shape[1] // 4
    report.update(
        warmup_steps=int(warm.sum()),
        warmup_quarters=[int(warm[:, i * quarter : (i + 1) * quarter].sum()) for i in range(4)],
        sampling_steps=int(steps.sum()),
        steps_per_draw=round(float(steps.mean()), 1),
        divergences=int(idata["sample_stats"]["diverging"].sum()),
        gate_passed=verdict.passed,
        gate_failed=list(verdict.failed),
        lowest_bulk_ess=[round(lowest[0]), lowest[1]],
        ess_per_1000_gradients=round(lowest[0] / (warm.sum() + steps.sum()) * 1000, 2),
        first_logp=idata["warmup_sample_stats"]["logp"].values[:, 0].round(1).tolist(),
        mean_logp=round(float(idata["sample_stats"]["logp"].values.mean()), 1),
    )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
