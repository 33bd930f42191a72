# LCMCR (Manrique-Vallier 2016) on the recovery study's simulated list tables, so that estim's latent-class
# rows can be compared with the R package on the same data (issue 16).
#
# Usage (from the repository root):
#   .venv/bin/python scripts/lists_recovery.py --out unused.csv --tables TABLES --datasets 10
#   Rscript scripts/lists_recovery_lcmcr.R TABLES > paper/inputs/lists_recovery_lcmcr.csv
# Writes one CSV row per table: the table's file name, the number seen, LCMCR's posterior median and its 5 % and
# 95 % quantiles of N. LCMCR 0.4.14, K = 10 classes, alpha ~ Gamma(0.25, 0.25) (the defaults of estim's
# lists_latent_class), seed 1, burn-in 10,000, 2,000 samples thinned by 20. Needs R >= 4.2 and LCMCR
# (GSL >= 2.5); see scripts/r_references_lcmcr.R.

suppressPackageStartupMessages(library(LCMCR))
folder <- commandArgs(trailingOnly = TRUE)[1]
files <- sort(list.files(folder, pattern = "\\.csv$", full.names = TRUE))
cat("table,n_observed,lcmcr_median,lcmcr_q05,lcmcr_q95\n")
for (f in files) {
  tab <- read.csv(f)
  lists <- setdiff(names(tab), "count")
  people <- tab[rep(seq_len(nrow(tab)), tab$count), lists]
  for (l in lists) people[[l]] <- factor(people[[l]], levels = c(0, 1))
  sampler <- lcmCR(people, tabular = FALSE, K = 10, a_alpha = 0.25, b_alpha = 0.25, seed = 1,
                   buffer_size = 10000, thinning = 20, in_list_label = "1", not_in_list_label = "0",
                   verbose = FALSE)
  N <- lcmCR_PostSampl(sampler, burnin = 10000, samples = 2000, thinning = 20, output = FALSE)
  q <- quantile(N, c(0.05, 0.5, 0.95), type = 7)
  cat(sprintf("%s,%d,%.1f,%.2f,%.2f\n", basename(f), nrow(people), q[2], q[1], q[3]))
}
