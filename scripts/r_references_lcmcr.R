# Reference posteriors for N from LCMCR (Manrique-Vallier 2016) on the Kosovo 4-list table (issue 16).
#
# Usage (from the repository root):  Rscript scripts/r_references_lcmcr.R [long]
# Prints, per seed, the 2.5 %, 50 % and 97.5 % posterior quantiles and the mean of N, then the same over all
# seeds' draws pooled. LCMCR's Gibbs sampler, K = 10 latent classes, alpha ~ Gamma(0.25, 0.25):
#   default: its help-page settings (?lcmCR, ?lcmCR_PostSampl), seeds 1-4, burn-in 10,000 iterations,
#            1,000 samples thinned by 100 (~2 s a seed);
#   long:    seeds 21-28, burn-in 20,000, 25,000 samples thinned by 40 (~20 s a seed). The chains mix slowly:
#            the default runs' medians and interval ends vary by 2-4 % between seeds, so the tests compare
#            with the long runs' pooled quantiles.
# A given seed gives the same numbers for the same LCMCR and GSL versions.
#
# Needs R >= 4.2 and LCMCR 0.4.14 (GSL >= 2.5). On Debian 12:
#   apt-get install -y r-base-core libgsl-dev
#   R CMD INSTALL <source tree of LCMCR 0.4.14>     (CRAN: install.packages("LCMCR"))

suppressPackageStartupMessages(library(LCMCR))
long <- identical(commandArgs(trailingOnly = TRUE), "long")
seeds <- if (long) 21:28 else 1:4
burnin <- if (long) 20000 else 10000
samples <- if (long) 25000 else 1000
thinning <- if (long) 40 else 100
script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
data_dir <- file.path(dirname(normalizePath(script)), "..", "data", "benchmarks")

# The shipped pattern table (15 observed patterns + Freq) as one row per person, lists as factors "0"/"1":
# the same 4,400 rows as LCMCR's own data(kosovo_aggregate).
kosovo <- read.csv(file.path(data_dir, "kosovo_4lists.csv"))
lists <- c("EXH", "ABA", "OSCE", "HRW")
people <- kosovo[rep(seq_len(nrow(kosovo)), kosovo$Freq), lists]
people[] <- lapply(people, factor, levels = c("0", "1"))
stopifnot(nrow(people) == 4400)

cat(sprintf("LCMCR %s, K = 10, a = b = 0.25, burnin %d, samples %d, thinning %d\n",
            packageVersion("LCMCR"), burnin, samples, thinning))
pooled <- c()
for (seed in seeds) {
  sampler <- lcmCR(captures = people, tabular = FALSE, in_list_label = "1", not_in_list_label = "0",
                   K = 10, a_alpha = 0.25, b_alpha = 0.25, seed = seed,
                   buffer_size = max(samples, 10000), thinning = thinning, verbose = FALSE)
  t0 <- proc.time()[["elapsed"]]
  N <- lcmCR_PostSampl(sampler, burnin = burnin, samples = samples, thinning = thinning,
                       output = FALSE)
  secs <- proc.time()[["elapsed"]] - t0
  q <- quantile(N, c(0.025, 0.5, 0.975))
  cat(sprintf("seed %d: q2.5 %.0f  median %.0f  q97.5 %.0f  mean %.0f  (%.1f s)\n",
              seed, q[1], q[2], q[3], mean(N), secs))
  pooled <- c(pooled, N)
}
q <- quantile(pooled, c(0.025, 0.5, 0.975))
cat(sprintf("pooled (%d draws): q2.5 %.0f  median %.0f  q97.5 %.0f  mean %.0f\n",
            length(pooled), q[1], q[2], q[3], mean(pooled)))
