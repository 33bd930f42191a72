"""The border model's revision: a number raised whenever a change moves what a fit of the border model
estimates (its likelihood, priors, parameterisation, the averaging with r = 1 or the draws of the unobserved
crossings), not when code is only reorganised. Study rows made by fitting the border model record it
(``model_revision``), so an input made by an earlier model can be told from a current one.

1. r fixed at 1 (Espenshade's repeated trials); to 2026-12-02.
2. r estimated from the register linkage, averaged with r = 1 by the Savage–Dickey ratio; to 2026-12-03.
3. the draws standing in for r = 1 moved along the ridge to r = 1 (`repeated_trials.at_repeated_trials`); their
   levels had stayed at their own r ≈ 0.99, the unobserved crossings ~1 % low. Rows of fits in which
   P(r = 1 | data) = 0 are the same under 2 and 3.
4. the shipped spec's journey levels shifted by terrain (``[options] terrain_journeys``, models/border.toml);
   from 2026-12-05. The option came in at revision 3 (off by default): rows made at revision 3 by a spec with
   the option on, sampler and seed as the shipped spec's (models/border_terrain_journeys.toml, since renamed)
   are the same fits, and are recorded as revision 4's.
5. the registers' coverage π with π + 0.001 log-uniform on (0.001, 1.001) (OffsetLogUniform), was uniform: with the linkage pinning s·π, the uniform
   gave r a factor 1/s per coverage, a pull towards small r (docs/design.md §4); from 2026-12-05.
6. the registers' coverage with logit π ~ Normal(−3, 2.5) (LogitNormal), was revision 5's OffsetLogUniform:
   as free of pull on r, with curvature everywhere; the offset law's tail, exactly linear in logit π, broke
   the sampler's metric when a chain strayed there (fits stalled for hours); from 2026-12-05 (evening).
"""

MODEL_REVISION = 6
