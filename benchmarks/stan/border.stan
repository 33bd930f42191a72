// The border model of estim (estim/families/border/model.py, whose module docstring is the full math), written
// in Stan for the race of issue 18: the shipped spec (models/border.toml) at model revision 6
// (estim/families/border/revision.py) — r estimated (its slab, Beta(1, 1)), no frailty, the sections' journey
// levels and their centred hazards both shifted by terrain (``terrain_journeys = true``), every total of the
// unsurveyed sections under the exact compound law (all ≤ saddlepoint_above = 256) — with the default priors
// (DEFAULT_PRIORS).
//
// Parameters are sampled exactly as PyMC samples them (the same names, the same unconstrained coordinates, in
// the order of `model.value_vars`), so that the two posteriors compare parameter by parameter and the log
// densities agree up to a constant (tests/benchmarks/test_stan_border.py):
//   * give_up_hazard_root v ∈ R², log r = −|v|²/2 (`retry.retry_log`);
//   * `*_given_retry` = name − log r (levels) or name − shift, shift = −log r / κ (section hazards and their
//     mean), each with its prior's location moved by the same amount (`retry.along_retry`);
//   * ZeroSumNormal in PyMC's n − 1 free coordinates (`*_zerosum`, PyMC's `*_zerosum__`), mapped to n values
//     summing to zero by PyMC's ZeroSumTransform (an isometry: the free values' normal density is PyMC's);
//   * HalfNormal on the log scale (Stan's lower = 0 is PyMC's log transform, with the same Jacobian);
//   * register_coverage_z | r ~ Normal(c log r − 3, 2.5), i.e. π ~ LogitNormal(−3, 2.5)
//     (`retry.register_coverage`).
//
// Cells (section s, month t, category c) are stored flat, column-major as Stan's to_vector of an S × T matrix
// per category: cell = s + S (t − 1) + S T (c − 1). The Python side (scripts/stan_race.py, `stan_data`) derives
// every index array from the same xarray Dataset the fit uses (`estim.run.data.load_data`).

functions {
  // PyMC's ZeroSumTransform.backward (`extend_axis`): n − 1 free values to n values that sum to zero.
  vector zero_sum(vector z) {
    real n = rows(z) + 1;
    real total = sum(z);
    real norm = total / (sqrt(n) + n);
    return append_row(z, norm - total / sqrt(n)) - norm;
  }

  // `model.pattern_probabilities` for two lists: P(seen on exactly pattern b), b = 0 … 3 (bit l: list l + 1),
  // from Q(U) = P(seen on none of the lists in U), by inclusion–exclusion; Q(∅) = 1. q1 = Q({list 1}),
  // q2 = Q({list 2}), q12 = Q({both}).
  vector patterns(real q1, real q2, real q12) {
    return [q12, q2 - q12, q1 - q12, 1 - q1 - q2 + q12]';
  }
}

data {
  // ---- dimensions (the model's coords)
  int<lower=1> S;  // sections
  int<lower=1> T;  // months
  int<lower=2> C;  // categories (data.CATEGORIES); the last, C, is the bypasser
  int<lower=1> E;  // policy events
  int<lower=2> R;  // terrains, in sorted order (np.unique, as the model)
  int<lower=2> D;  // detectors (data.DETECTORS): patrol first (e_patrol = 0)
  int<lower=1, upper=C - 1> resident;  // index of border_resident
  int<lower=2, upper=D> technical;  // index of the technical detector (the trend δ)
  // ---- covariates
  vector[S] log_length;  // log(ℓ_s / 1000)
  vector[S] log_population;  // log(N_s / 10⁵)
  array[S] int<lower=1, upper=R> terrain;  // terrain(s)
  row_vector[T] years;  // y(t)
  matrix[4, T] harmonics;  // data.harmonics(m(t))ᵀ: cos, sin of 2πm/12 and 4πm/12
  matrix[E, T] in_force;  // I_e(t)
  matrix[S, T] log_flow;  // log max(F_{s,t}, 1): land foreign flow at the checkpoints
  matrix[S, T] log_wait;  // log(max(w_{s,t}, 0.1) / 60): its mean wait
  real<lower=0> ridge_hazard_slope;  // κ, retry.RIDGE_HAZARD_SLOPE
  real<lower=0> ridge_coverage_slope;  // c, retry.RIDGE_COVERAGE_SLOPE
  // ---- surveyed sections (individual records): every cell but the no-flow bypasser cells
  int<lower=0> N_surv;
  array[N_surv] int<lower=1, upper=S * T * C> surv_cell;
  array[N_surv] int<lower=0> journeys;  // A = Σ_k f_k, the apprehended journeys
  array[N_surv] int<lower=0> repeats;  // Σ_k (k − 1) f_k, their apprehensions after the first
  // ---- unsurveyed sections (monthly totals K only): cells with K = 0, and cells with K ≥ 1
  int<lower=0> N_zero;
  array[N_zero] int<lower=1, upper=S * T * C> zero_cell;
  int<lower=0> N_pos;
  array[N_pos] int<lower=1, upper=S * T * C> pos_cell;
  array[N_pos] int<lower=1> total;  // K
  // ---- linkage of the surveyed sections' journeys to the two in-country lists (patterns b = 0 … 3;
  //      other_sightings sets 1 = {list 1}, 2 = {list 2}, 3 = {both}: `model.link_set_names`)
  int<lower=0> N_link;
  array[N_link] int<lower=1, upper=S * T * C> link_cell;
  array[N_link, 4] int<lower=0> linked;  // journeys by pattern in the W days after
  array[N_link, 4] int<lower=0> before;  // journeys by pattern in the W days before
  // ---- the detector split of each month's apprehensions (all sections and categories)
  array[T, D] int<lower=0> by_detector;
}

transformed data {
  int CJ = C - 1;  // journey categories (data.JOURNEY_CATEGORIES): log-linear journeys
  int ST = S * T;
  // each cell's category
  array[N_surv] int surv_cat;
  array[N_zero] int zero_cat;
  array[N_pos] int pos_cat;
  array[N_link] int link_cat;
  for (i in 1:N_surv) surv_cat[i] = (surv_cell[i] - 1) %/% ST + 1;
  for (i in 1:N_zero) zero_cat[i] = (zero_cell[i] - 1) %/% ST + 1;
  for (i in 1:N_pos) pos_cat[i] = (pos_cell[i] - 1) %/% ST + 1;
  for (i in 1:N_link) link_cat[i] = (link_cell[i] - 1) %/% ST + 1;
  vector[N_surv] journeys_v = to_vector(journeys);
  vector[N_surv] repeats_v = to_vector(repeats);
  vector[N_pos] total_v = to_vector(total);
  array[N_link] vector[4] linked_v;
  array[N_link] vector[4] before_v;
  for (i in 1:N_link) {
    linked_v[i] = to_vector(linked[i]);
    before_v[i] = to_vector(before[i]);
  }
  matrix[D, T] by_detector_m = to_matrix(by_detector)';
  vector[D] is_technical = one_hot_vector(D, technical);
  // the totals' law: terms a = 1 … K of each cell, laid end to end; the constant of term a is
  // c(K, a) = log C(K − 1, a − 1) − log a! (`kernels.totals_logp`)
  int K_max = max(append_array({1}, total));
  vector[K_max] grid = linspaced_vector(K_max, 1, K_max);  // a = 1 … K_max
  array[N_pos] int pos_start;
  int n_terms = 0;
  for (i in 1:N_pos) {
    pos_start[i] = n_terms + 1;
    n_terms += total[i];
  }
  vector[n_terms] coef;
  for (i in 1:N_pos) {
    for (a in 1:total[i]) {
      coef[pos_start[i] + a - 1] = lchoose(total[i] - 1, a - 1) - lgamma(a + 1);
    }
  }
}

parameters {
  // in the order of PyMC's value_vars (the sampler's parameter vector)
  vector[2] give_up_hazard_root;  // v: h = −log r = |v|²/2 [give_up_hazard_root]
  real<lower=0> section_sd;  // σ_α
  vector[S - 1] section_deviation_zerosum;  // α'_s, PyMC's free coordinates
  vector[R - 1] journey_terrain_zerosum;  // u_terrain, PyMC's free coordinates
  vector[CJ] category_level_given_retry;  // β_c − log r
  matrix[CJ, 4] season;  // S_c: two seasonal harmonics
  vector[CJ] trend;  // τ_c
  matrix[E, CJ] log_policy_effect;  // log θ_{e,c}
  real population_elasticity;  // γ
  vector<lower=0>[C] overdispersion;  // 1/√φ_c
  real bypass_eta0_given_retry;  // η0 − log r
  real bypass_eta1;  // η1
  real hazard_mean_given_retry;  // μ_a − shift
  real<lower=0> hazard_section_sd;  // σ_a
  vector[R - 1] hazard_terrain_zerosum;  // t_terrain, PyMC's free coordinates
  vector[S] hazard_section_given_retry;  // a_s − shift
  vector[C - 1] hazard_category_zerosum;  // b_c, PyMC's free coordinates
  vector[D - 1] hazard_detector;  // e_d, d ≠ patrol
  real technical_trend;  // δ
  matrix[2, C] register_coverage_z;  // logit π_{L,c} + c log r
  matrix<lower=0>[3, C] other_sightings;  // μ_{S,c}
}

transformed parameters {
  // the model's deterministics, named as in a fit's posterior
  real log_retry = -0.5 * dot_self(give_up_hazard_root);  // log r
  real shift = -log_retry / ridge_hazard_slope;  // a_s and μ_a move by −log r / κ along the ridge
  real retry_probability = exp(log_retry);  // r
  vector[S] section_deviation = zero_sum(section_deviation_zerosum);
  vector[R] journey_terrain = zero_sum(journey_terrain_zerosum);
  vector[S] section_effect = section_deviation + journey_terrain[terrain];  // α_s = u_terrain(s) + α'_s
  vector[CJ] category_level = category_level_given_retry + log_retry;
  real bypass_eta0 = bypass_eta0_given_retry + log_retry;
  real hazard_mean = hazard_mean_given_retry + shift;
  vector[R] hazard_terrain = zero_sum(hazard_terrain_zerosum);
  vector[S] hazard_section = hazard_section_given_retry + shift;
  vector[C] hazard_category = zero_sum(hazard_category_zerosum);
  matrix[2, C] register_coverage = inv_logit(register_coverage_z - ridge_coverage_slope * log_retry);
}

model {
  vector[C] phi = inv_square(overdispersion);  // φ_c
  vector[C] log_phi = log(phi);

  // ---- priors (DEFAULT_PRIORS; `~` drops constants only)
  give_up_hazard_root ~ std_normal();  // r ~ Beta(1, 1) ⇔ h = |v|²/2 ~ Exponential(1), v ~ N(0, I)
  section_sd ~ normal(0, 0.5);  // HalfNormal(0.5)
  section_deviation_zerosum ~ normal(0, section_sd);  // ZeroSumNormal(sigma = section_sd)
  journey_terrain_zerosum ~ normal(0, 0.5);  // ZeroSumNormal(0.5)
  category_level_given_retry ~ normal(2 - log_retry, 2);  // category_level ~ Normal(2, 2)
  to_vector(season) ~ normal(0, 0.5);
  trend ~ normal(0, 0.25);
  to_vector(log_policy_effect) ~ normal(0, 0.5);
  population_elasticity ~ normal(1, 0.5);
  overdispersion ~ normal(0, 0.5);  // HalfNormal(0.5)
  bypass_eta0_given_retry ~ normal(-8 - log_retry, 2);  // bypass_eta0 ~ Normal(−8, 2)
  bypass_eta1 ~ normal(0, 2);
  hazard_mean_given_retry ~ normal(-0.5 - shift, 1);  // hazard_mean ~ Normal(−0.5, 1)
  hazard_section_sd ~ normal(0, 0.3);  // HalfNormal(0.3)
  hazard_terrain_zerosum ~ normal(0, 0.5);  // ZeroSumNormal(0.5)
  // a_s ~ Normal(μ_a + t_terrain(s), σ_a), centred, sampled relative to the ridge shift
  hazard_section_given_retry ~ normal(hazard_mean + hazard_terrain[terrain] - shift, hazard_section_sd);
  hazard_category_zerosum ~ normal(0, 0.5);  // ZeroSumNormal(0.5)
  hazard_detector ~ normal(0, 1.5);
  technical_trend ~ normal(0, 0.2);
  // π ~ LogitNormal(−3, 2.5) ⇔ z | r ~ Normal(c log r − 3, 2.5), z = logit π + c log r
  to_vector(register_coverage_z) ~ normal(ridge_coverage_slope * log_retry - 3, 2.5);
  to_vector(other_sightings) ~ normal(0, 0.5);  // HalfNormal(0.5)

  // ---- rates of every cell (`rates.log_rates`): log μ, log H
  vector[ST * C] log_mu;
  vector[ST * C] log_hazard;
  // detectors: e_d + δ y [d = technical], e_patrol = 0 (D × T); log Σ_d exp(…) per month
  matrix[D, T] detector = rep_matrix(append_row(0, hazard_detector), T)
                          + is_technical * (technical_trend * years);
  row_vector[T] log_detectors;
  for (t in 1:T) log_detectors[t] = log_sum_exp(col(detector, t));
  for (c in 1:C) {
    matrix[S, T] lm;
    if (c <= CJ) {
      // log μ = log(ℓ_s/1000) + α_s + β_c + S_c(m) + τ_c y + Σ_e log(1 + (θ_{e,c} − 1) I_e(t))
      //         + γ log(N_s/10⁵) [c = border_resident]
      row_vector[T] category_month = category_level[c] + season[c] * harmonics + trend[c] * years;
      for (e in 1:E) {
        category_month += log1p(expm1(log_policy_effect[e, c]) * in_force[e]);
      }
      vector[S] section = section_effect + log_length;
      if (c == resident) section += population_elasticity * log_population;
      lm = rep_matrix(section, T) + rep_matrix(category_month, S);
    } else {
      // bypassers: μ = F · expit(η0 + η1 log(max(w, 0.1)/60))
      lm = log_flow + log_inv_logit(bypass_eta0 + bypass_eta1 * log_wait);
    }
    log_mu[(ST * (c - 1) + 1):(ST * c)] = to_vector(lm);
    // log H = a_s + b_c + log Σ_d exp(e_d + δ y [d = technical])
    log_hazard[(ST * (c - 1) + 1):(ST * c)] = to_vector(rep_matrix(hazard_section + hazard_category[c], T)
                                                        + rep_matrix(log_detectors, S));
  }
  // p = 1 − exp(−H); `rates.detection` without frailty, r kept 1e-12 below 1 as in the model
  vector[ST * C] log_1mp = -exp(log_hazard);
  vector[ST * C] log_p = log1m_exp(log_1mp);
  real lr = fmin(log_retry, -1e-12);
  vector[ST * C] log_pr = log_p + lr;  // pr: an apprehended journey's continuation
  vector[ST * C] log_1mpr = log1m_exp(log_pr);

  // ---- surveyed sections: apprehended journeys A ~ NegBin(μp, φ) …
  target += neg_binomial_2_log_lpmf(journeys | log_mu[surv_cell] + log_p[surv_cell], phi[surv_cat]);
  // … and f_k journeys apprehended k times, zero-truncated geometric: Σ_k f_k [(k − 1) log pr + log(1 − pr)]
  target += dot_product(repeats_v, log_pr[surv_cell]) + dot_product(journeys_v, log_1mpr[surv_cell]);

  // ---- unsurveyed sections: totals K under the exact compound law (`kernels.totals_logp`)
  // P(K = 0) = (φ/(φ + μp))^φ
  target += dot_product(phi[zero_cat],
                        -log1p_exp(log_mu[zero_cell] + log_p[zero_cell] - log_phi[zero_cat]));
  // P(K = k) = Σ_{a=1..k} NegBin(a; μp, φ) C(k−1, a−1) (pr)^{k−a} (1 − pr)^a, term a being
  // g_c(a) + A0 + a·B + c(k, a), g_c(a) = log Γ(a + φ_c) − log Γ(φ_c) (one table per category)
  {
    array[C] vector[K_max] g;
    for (c in 1:C) g[c] = lgamma(grid + phi[c]) - lgamma(phi[c]);
    vector[N_pos] log_mp = log_mu[pos_cell] + log_p[pos_cell];
    vector[N_pos] lpr = log_pr[pos_cell];
    // A0 = φ log(φ/(φ + μp)) + k log pr;  B = log(μp/(φ + μp)) + log(1 − pr) − log pr
    vector[N_pos] a0 = phi[pos_cat] .* -log1p_exp(log_mp - log_phi[pos_cat]) + total_v .* lpr;
    vector[N_pos] b = -log1p_exp(log_phi[pos_cat] - log_mp) + log_1mpr[pos_cell] - lpr;
    vector[N_pos] sums;
    for (i in 1:N_pos) {
      int k = total[i];
      sums[i] = log_sum_exp(head(g[pos_cat[i]], k) + b[i] * head(grid, k) + segment(coef, pos_start[i], k));
    }
    target += sum(a0) + sum(sums);
  }

  // ---- linkage (`model.link_terms`): a journey got through with s = r(1 − p)/(1 − pr); list L then records
  // that crossing with π_L; the person's other crossings seen on exactly the lists S are Poisson(μ_S). The
  // pattern probabilities depend on the category only; s on the cell.
  {
    array[C] vector[4] log_if_got;
    array[C] vector[4] log_if_not;
    for (c in 1:C) {
      // background Q(U) = exp(−Σ_{S ∩ U ≠ ∅} μ_S); this crossing Π_{L ∈ U} (1 − π_L)
      real q1 = exp(-(other_sightings[1, c] + other_sightings[3, c]));
      real q2 = exp(-(other_sightings[2, c] + other_sightings[3, c]));
      real q12 = exp(-sum(col(other_sightings, c)));
      real miss1 = 1 - register_coverage[1, c];
      real miss2 = 1 - register_coverage[2, c];
      vector[4] if_got = patterns(miss1 * q1, miss2 * q2, miss1 * miss2 * q12);
      vector[4] if_not = patterns(q1, q2, q12);
      for (b in 1:4) {  // a pattern's probability is positive; inclusion–exclusion can round to 0
        log_if_got[c, b] = log(fmax(if_got[b], 1e-300));
        log_if_not[c, b] = log(fmax(if_not[b], 1e-300));
      }
    }
    real log_1mr = log1m_exp(lr);
    for (i in 1:N_link) {
      int n = link_cell[i];
      int c = link_cat[i];
      real log_s = lr + log_1mp[n] - log_1mpr[n];  // log s
      real log_1ms = log_1mr - log_1mpr[n];  // log(1 − s) = log((1 − r)/(1 − pr))
      vector[4] log_pattern;
      for (b in 1:4) {
        log_pattern[b] = log_sum_exp(log_s + log_if_got[c, b], log_1ms + log_if_not[c, b]);
      }
      // multinomial by pattern after the journey (got through or not) and before it (other crossings only)
      target += dot_product(linked_v[i], log_pattern) + dot_product(before_v[i], log_if_not[c]);
    }
  }

  // ---- the detector split of each month's apprehensions: multinomial, shares ∝ exp(e_d + δ y [d = technical])
  target += sum(by_detector_m .* (detector - rep_matrix(log_detectors, D)));
}
