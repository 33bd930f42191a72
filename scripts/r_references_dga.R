# Reference numbers from R's dga 2.0.2 (Bayesian model averaging over decomposable graphs, Madigan & York 1997)
# for estim.families.lists.bma (issue 16); tests/families/test_lists_bma.py holds them as constants.
#
# Usage (from the repository root):  Rscript scripts/r_references_dga.R
# Prints labelled numbers, each with the R call that produced it. Reads only data/benchmarks/*.csv; no
# randomness. Needs R >= 4.2 with dga 2.0.2 and digest. On Debian 12:
#   apt-get install -y r-base-core r-cran-chron r-cran-rcpparmadillo r-cran-digest
#   R CMD INSTALL <source tree of dga 2.0.2>          (CRAN: install.packages(c("dga", "digest")))

suppressPackageStartupMessages({ library(dga); library(digest) })
data(graphs3); data(graphs4); data(graphs5)
script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
data_dir <- file.path(dirname(normalizePath(script)), "..", "data", "benchmarks")
cat("R", R.version$major, ".", R.version$minor, "; dga", as.character(packageVersion("dga")), "\n", sep = "")

# A pattern table as dga's 2 x ... x 2 array: dimension j is list j (column order of the file), index 1 = not
# on the list, 2 = on it; Y[1, ..., 1] (nobody's cell) is 0.
as_array <- function(df, lists, count) {
  Y <- array(0, dim = rep(2, length(lists)))
  for (r in seq_len(nrow(df))) {
    idx <- matrix(as.integer(df[r, lists]) + 1L, nrow = 1)
    Y[idx] <- Y[idx] + df[r, count]
  }
  Y
}
# dga's usage (plotPosteriorN): colSums(weights) is the model-averaged posterior of N = sum(Y) + Nmissing;
# a quantile is the smallest N on the grid whose CDF reaches the probability.
graph_name <- function(g) paste0("[", sapply(g$C, function(c) paste(sort(c), collapse = ",")), "]", collapse = "")
report <- function(label, call, Y, Nmissing, delta, graphs, ...) {
  elapsed <- system.time(w <- bma.cr(Y, Nmissing, delta, graphs, ...))[["elapsed"]]
  N <- sum(Y) + Nmissing
  pn <- colSums(w); cdf <- cumsum(pn); q <- function(p) N[which(cdf >= p)[1]]
  pg <- rowSums(w); top <- order(-pg)[1:3]
  cat("\n##", label, "\n#", call, "\n")
  cat(sprintf("mean %.4f  median %d  q2.5 %d  q97.5 %d  mode %d  (%.2f s)\n",
              sum(pn * N), q(.5), q(.025), q(.975), N[which.max(pn)], elapsed))
  for (i in top) cat(sprintf("graph %d %s  probability %.10f\n", i, graph_name(graphs[[i]]), pg[i]))
  invisible(w)
}

kosovo <- read.csv(file.path(data_dir, "kosovo_4lists.csv"))    # EXH ABA OSCE HRW Freq, 4,400 people
uk <- read.csv(file.path(data_dir, "uk_modern_slavery_5lists.csv"))  # LA NG PFNCA GO GP count, 2,744 people
Yk <- as_array(kosovo, c("EXH", "ABA", "OSCE", "HRW"), "Freq")
Yu <- as_array(uk, c("LA", "NG", "PFNCA", "GO", "GP"), "count")

# The issue's reference numbers come from the grid Nmissing = 1:(12 n): Kosovo's posterior lies well inside it,
# the UK's is cut off by it (its untruncated numbers follow).
report("Kosovo, delta = 1/16, p(N) ~ 1/N, Nmissing = 1:52800 (12 n)",
       "bma.cr(Yk, 1:52800, 1/16, graphs4)", Yk, 1:52800, 1 / 16, graphs4)
report("UK, delta = 2^-5, p(N) ~ 1/N, Nmissing = 1:32928 (12 n)",
       "bma.cr(Yu, 1:32928, 2^-5, graphs5)", Yu, 1:32928, 2^-5, graphs5)
report("UK, delta = 2^-5, p(N) ~ 1/N, Nmissing = 1:100000 (untruncated: 1:200000 gives the same)",
       "bma.cr(Yu, 1:100000, 2^-5, graphs5)", Yu, 1:100000, 2^-5, graphs5)

# Madigan & York's (1997) three lists, with their negative-binomial-like prior on N (dga's own example and test).
Y3 <- array(c(0, 60, 49, 4, 247, 112, 142, 12), dim = c(2, 2, 2))
N3 <- sum(Y3) + 1:300
logprior3 <- N3 * log(55.17) - (N3 + 13.14) * log(1 + 55.17) + lgamma(N3 + 13.14) - lgamma(N3 + 1) - lgamma(13.14)
w3 <- report("Madigan & York 3 lists, delta = 1, Nmissing = 1:300, their prior",
             "bma.cr(Y3, 1:300, 1, graphs3, logprior3)", Y3, 1:300, 1, graphs3, logprior3)
cat("every graph's probability, in graphs3's order:\n")
for (i in seq_along(graphs3)) cat(sprintf("  %s %.12f\n", graph_name(graphs3[[i]]), sum(w3[i, ])))
cat(sprintf("posterior of N at N = 700, 728, 800: %.12e %.12e %.12e\n",
            colSums(w3)[700 - sum(Y3)], colSums(w3)[728 - sum(Y3)], colSums(w3)[800 - sum(Y3)]))

# Madigan & York's five lists (dga's README example), delta = 0.5, p(N) ~ 1/N.
Y5 <- array(c(0, 27, 37, 19, 4, 4, 1, 1, 97, 22, 37, 25, 2, 1, 3, 5,
              83, 36, 34, 18, 3, 5, 0, 2, 30, 5, 23, 8, 0, 3, 0, 2), dim = rep(2, 5))
report("Madigan & York 5 lists, delta = 0.5, Nmissing = 1:300, p(N) ~ 1/N",
       "bma.cr(Y5, 1:300, 0.5, graphs5)", Y5, 1:300, 0.5, graphs5)

# The graphs: one line per graph, "C:" cliques "|"-separated then ";S:" separators, each a "."-joined sorted
# list of 1-based list numbers; cliques, separators and lines sorted in C-locale (radix) order; the SHA-256 of
# the lines joined by "\n".
canonical <- function(graphs) {
  sets <- function(x) paste(sort(sapply(x, function(v) paste(sort(as.integer(v)), collapse = ".")),
                                 method = "radix"), collapse = "|")
  sort(sapply(graphs, function(g) paste0("C:", sets(g$C), ";S:", if (is.null(g$S)) "" else sets(g$S))),
       method = "radix")
}
for (p in 3:5) {
  lines <- canonical(get(paste0("graphs", p)))
  cat(sprintf("\ngraphs%d: %d graphs, sha256 %s\n", p, length(lines),
              digest(paste(lines, collapse = "\n"), algo = "sha256", serialize = FALSE)))
  if (p == 3) cat(paste0("  ", lines, "\n"), sep = "")
}
