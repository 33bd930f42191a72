# Reference numbers from SparseMSE 2.0.1 (lpSolve 5.6.18) for the multiple-list family (issue 16):
# existence / identifiability checks (checkident, checkallmodels) and stepwise selection (stepwisefit via
# estimatepopulation.0, threshold 0.02) on the two benchmarks and on small constructed tables.
# tests/families/test_lists_existence.py and test_lists_stepwise.py hold these numbers as constants.
#
# Usage (from the repository root):  Rscript scripts/r_references_lists.R
# Prints the numbers, each under the R call that produced it. No randomness.
#
# Needs R >= 4.2 with SparseMSE 2.0.1 and lpSolve. On Debian 12:
#   apt-get install -y r-base-core r-cran-lpsolve
#   R CMD INSTALL <source tree of SparseMSE 2.0.1>   (Rcapture is also imported: see scripts/r_references.R)
# (CRAN: install.packages("SparseMSE") does the same.)

suppressPackageStartupMessages(library(SparseMSE))
script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
data_dir <- file.path(dirname(normalizePath(script)), "..", "data", "benchmarks")
cat("SparseMSE", as.character(packageVersion("SparseMSE")),
    "lpSolve", as.character(packageVersion("lpSolve")), "\n")
uk <- read.csv(file.path(data_dir, "uk_modern_slavery_5lists.csv"))     # LA NG PFNCA GO GP count
kosovo <- read.csv(file.path(data_dir, "kosovo_4lists.csv"))           # EXH ABA OSCE HRW Freq

# the pairs of lists in stepwisefit's order: (1, 2), (1, 3), …, (1, m), (2, 3), …
pairs_of <- function(m) do.call(cbind, lapply(1:(m - 1), function(i) rbind(i, (i + 1):m)))
names_of <- function(z, mX) if (length(mX) == 0) "main" else
  paste(apply(matrix(names(z)[mX], nrow = 2), 2, paste, collapse = ":"), collapse = " + ")

# ---- stepwise selection (threshold 0.02) ------------------------------------------------------------
# the p-values of every candidate pair at each step, as stepwisefit computes them (its code does not
# return them): min(P(X <= n*), P(X >= n*)) with X ~ Poisson(fitted overlap), 1 when
# checkident fails
stepwise_path <- function(z, pthresh = 0.02) {
  m <- ncol(z) - 1; ints <- pairs_of(m); mX <- NULL
  nstar <- apply(ints, 2, function(p) sum(z[, p[1]] * z[, p[2]] * z[, m + 1]))
  repeat {
    fit <- modelfit(z, mX = mX, check = FALSE)$fit
    mu <- exp(predict(fit)); d0 <- fit$data
    included <- if (is.null(mX)) rep(FALSE, ncol(ints)) else
      apply(ints, 2, function(p) any(mX[1, ] == p[1] & mX[2, ] == p[2]))
    pv <- rep(1, ncol(ints))
    for (j in which(!included)) {
      pstar <- sum(mu * d0[, ints[1, j]] * d0[, ints[2, j]])
      pv[j] <- min(ppois(nstar[j], pstar), ppois(nstar[j] - 1, pstar, FALSE))
      if (checkident(z, cbind(mX, ints[, j])) > 0) pv[j] <- 1
    }
    cat(sprintf("  step after [%s]: min p = %.6g at %s\n", names_of(z, mX), min(pv),
                names_of(z, ints[, which.min(pv)])))
    cat("   p:", paste(sprintf("%s=%.6g", sapply(1:ncol(ints), function(j) names_of(z, ints[, j])), pv),
                       collapse = " "), "\n")
    if (min(pv) >= pthresh || all(included)) break
    mX <- cbind(mX, ints[, which.min(pv)])
  }
}

for (nm in c("uk", "kosovo")) {
  z <- get(nm)
  cat("=====", nm, "\n")
  cat("estimatepopulation.0(z, method = 'stepwise', pthresh = 0.02, quantiles = c(0.025, 0.975))\n")
  e <- estimatepopulation.0(z, method = "stepwise", quantiles = c(0.025, 0.975), pthresh = 0.02)
  print(e$estimate, digits = 10)
  print(coef(e$MSEfit$fit), digits = 10)
  cat("deviance", format(e$MSEfit$fit$deviance, digits = 10), "df", e$MSEfit$fit$df.residual, "\n")
  cat("empty overlaps in the model:", colnames(e$MSEfit$emptyoverlaps), "\n")
  cat("estimatepopulation.0(z, method = 'main')\n")
  print(estimatepopulation.0(z, method = "main", quantiles = c(0.025, 0.975))$estimate, digits = 10)
  stepwise_path(z)
  cat("checkident(z, mX = 0):", checkident(z, mX = 0), " checkident(z, mX = NULL):",
      checkident(z, mX = NULL), "\n")
  cat("checkallmodels(z):\n"); print(checkallmodels(z))
}

# ---- checkident on every pairwise model of small constructed tables ----------------------------------
# codes: 0 exists and identifiable, 1 the (extended) MLE does not exist, 2 not identifiable, 3 both
tables <- list(
  artificial_3 = data.frame(A = c(1, 0, 0, 1), B = c(0, 1, 0, 1), C = c(0, 0, 1, 0), n = c(40, 30, 20, 6)),
  sparse_4a = data.frame(A = c(1, 0, 0, 0, 1, 0, 1), B = c(0, 1, 0, 0, 1, 0, 0),
                         C = c(0, 0, 1, 0, 0, 1, 1), D = c(0, 0, 0, 1, 0, 1, 0),
                         n = c(20, 15, 10, 8, 3, 2, 1)),
  sparse_4b = data.frame(A = c(1, 0, 0, 0, 1, 1, 0, 0), B = c(0, 1, 0, 0, 1, 1, 1, 0),
                         C = c(0, 0, 1, 0, 0, 1, 0, 1), D = c(0, 0, 0, 1, 0, 0, 1, 1),
                         n = c(12, 9, 7, 5, 2, 1, 1, 1))
)
for (nm in names(tables)) {
  z <- tables[[nm]]; m <- ncol(z) - 1; ints <- pairs_of(m); k <- ncol(ints)
  # model j (0 … 2^k − 1) contains pair i when bit i − 1 of j is set (pairs in the order (1,2), (1,3), …)
  codes <- sapply(0:(2^k - 1), function(j) {
    keep <- as.logical(intToBits(j)[1:k])
    checkident(z, if (any(keep)) ints[, keep, drop = FALSE] else NULL)
  })
  cat("=====", nm, ": checkident codes of models 0 ..", 2^k - 1, "\n", paste(codes, collapse = ""), "\n")
}

# ---- stepwise selection when two lists have no one in common (their pair enters as a structural zero) --
disjoint_4 <- data.frame(A = c(1, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0), B = c(0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 1),
                         C = c(0, 0, 1, 0, 1, 1, 0, 0, 1, 1, 1), D = c(0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1),
                         n = c(100, 80, 50, 40, 20, 15, 10, 8, 5, 3, 2))
cat("===== disjoint_4\n")
cat("estimatepopulation.0(disjoint_4, method = 'stepwise', pthresh = 0.02, quantiles = c(0.025, 0.975))\n")
e <- estimatepopulation.0(disjoint_4, method = "stepwise", quantiles = c(0.025, 0.975), pthresh = 0.02)
print(e$estimate, digits = 10)
print(coef(e$MSEfit$fit), digits = 10)
cat("empty overlaps in the model:", colnames(e$MSEfit$emptyoverlaps), "\n")
stepwise_path(disjoint_4)
