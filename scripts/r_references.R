# Reference numbers from the R peers (Rcapture, singleRcapture, VGAM) on the benchmark data (issue 15).
#
# Usage (from the repository root):  Rscript scripts/r_references.R OUTFILE.json
# Writes OUTFILE.json (machine-readable) and OUTFILE.txt (the same numbers, labelled, each with the exact R
# call that produced it). Reads only data/benchmarks/*.csv; no randomness, so reruns give the same bytes
# for the same package versions (recorded under "versions").
#
# Needs R >= 4.2 with: Rcapture 1.4-4, singleRcapture 0.2.3, VGAM, jsonlite. On Debian 12:
#   apt-get install -y r-base-core r-cran-vgam r-cran-lamw r-cran-sandwich r-cran-doparallel \
#     r-cran-foreach r-cran-mathjaxr r-cran-jsonlite
#   R CMD INSTALL <source tree of Rcapture 1.4-4>; R CMD INSTALL <source tree of singleRcapture 0.2.3>
# (CRAN: install.packages(c("Rcapture", "singleRcapture", "VGAM", "jsonlite")) does the same.)

suppressPackageStartupMessages({
  library(Rcapture); library(singleRcapture); library(VGAM); library(jsonlite)
})
out_json <- commandArgs(trailingOnly = TRUE)[1]
if (is.na(out_json)) stop("usage: Rscript scripts/r_references.R OUTFILE.json")
script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
data_dir <- file.path(dirname(normalizePath(script)), "..", "data", "benchmarks")
read_bench <- function(name, ...) read.csv(file.path(data_dir, name), ...)

# The data. Rcapture names capture occasions / lists c1..cK by column position (used in mX formulas).
hare <- as.matrix(read_bench("hare.csv"))                       # 68 animals x 6 occasions
hare_fk <- cbind(nbcap = 1:6, freq = tabulate(rowSums(hare), 6)) # f_k, k = 1..6
dutch_fk <- as.matrix(read_bench("netherlands_immigrants_freq.csv"))
dutch <- read_bench("netherlands_immigrants.csv", stringsAsFactors = TRUE)
kosovo <- as.matrix(read_bench("kosovo_4lists.csv"))            # list patterns + count (last column)
uk <- as.matrix(read_bench("uk_modern_slavery_5lists.csv"))
bundled_dutch <- singleRcapture::netherlandsimmigrant
checks <- list(
  hare_csv_equals_Rcapture_hare = isTRUE(all(hare == Rcapture::hare)),
  dutch_freq_csv_equals_Rcapture_ill = isTRUE(all(dutch_fk == Rcapture::ill)),
  dutch_csv_equals_singleRcapture_netherlandsimmigrant =
    isTRUE(all.equal(dutch, bundled_dutch, check.attributes = FALSE)) &&
    identical(lapply(dutch, levels), lapply(bundled_dutch, levels)),
  kosovo_lists_c1_to_c4 = paste(colnames(kosovo)[1:4], collapse = ", "),
  uk_lists_c1_to_c5 = paste(colnames(uk)[1:5], collapse = ", ")
)

# Evaluate a quoted call, keeping its text and any warnings (recorded, not fatal).
run <- function(call) {
  warns <- character()
  value <- withCallingHandlers(eval(call, globalenv()), warning = function(w) {
    warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")
  })
  list(call = paste(deparse(call, width.cutoff = 500), collapse = " "), value = value, warnings = warns)
}
num <- function(x) { v <- suppressWarnings(as.numeric(x)); if (is.na(v)) as.character(x) else v }
row_list <- function(tab, i) sapply(colnames(tab), function(j) num(tab[i, j]), simplify = FALSE)

closedp_table <- function(call) {   # closedp.t / closedp.0: one entry per fitted model
  r <- run(call); v <- r$value; res <- v$results
  short <- names(v$glm.warn)  # M0, Mt, MhC, ..., row for row with the results table
  sapply(rownames(res), function(m) { s <- short[rownames(res) == m]
    c(row_list(res, m), list(bias = unname(v$bias[s]), neg_eta = v$neg.eta[[s]],
      glm_warnings = v$glm.warn[[s]], glm_error = v$glm.err[[s]], warnings = r$warnings, call = r$call))
  }, simplify = FALSE)
}
closedp_ci <- function(calls) {     # closedpCI.t / closedpCI.0: fit + multinomial profile interval
  out <- lapply(calls, function(call) {
    r <- run(call); v <- r$value; ci <- row_list(v$CI, 1)
    c(row_list(v$results, 1), list(multinomial_abundance = ci$abundance, infCL = ci$infCL,
      supCL = ci$supCL, infoCI = ci$infoCI, neg_eta = v$neg.eta, fit_warnings = v$fit.warn,
      CI_warnings = v$CI.warn, warnings = r$warnings, call = r$call, model = rownames(v$results)))
  })
  setNames(out, sapply(out, `[[`, "model"))
}
single <- function(call) {          # singleRcapture::estimatePopsize
  r <- run(call); fit <- r$value; ps <- fit$populationSize; cf <- coef(summary(fit))
  ci <- ps$confidenceInterval
  list(point_estimate = ps$pointEstimate, stderr = sqrt(ps$variance),
       ci95_normal = unname(unlist(ci["normal", ])), ci95_lognormal = unname(unlist(ci["logNormal", ])),
       observed = fit$sizeObserved, logL = fit$logL, link = attr(fit$model$links, "linkNames"),
       coefficients = sapply(rownames(cf), function(b) list(estimate = cf[b, 1], stderr = cf[b, 2]),
                             simplify = FALSE),
       warnings = r$warnings, call = r$call)
}

ci_hare <- list(
  quote(closedpCI.t(hare, m = "M0")), quote(closedpCI.t(hare, m = "Mt")),
  quote(closedpCI.t(hare, m = "Mh", h = "Chao")),
  quote(closedpCI.t(hare, m = "Mh", h = "Poisson", h.control = list(theta = 2))),
  quote(closedpCI.t(hare, m = "Mh", h = "Darroch")),
  quote(closedpCI.t(hare, m = "Mh", h = "Gamma", h.control = list(theta = 3.5))),
  quote(closedpCI.t(hare, m = "Mth", h = "Poisson", h.control = list(theta = 2))),
  quote(closedpCI.t(hare, m = "Mth", h = "Chao")), quote(closedpCI.t(hare, m = "Mth", h = "Darroch")))
ci_lists <- function(d) list(        # the same five models on a list data set `d` (symbol)
  bquote(closedpCI.t(.(d), dfreq = TRUE, m = "Mt")),
  bquote(closedpCI.t(.(d), dfreq = TRUE, m = "Mh", h = "Darroch")),
  bquote(closedpCI.t(.(d), dfreq = TRUE, m = "Mh", h = "Gamma", h.control = list(theta = 3.5))),
  bquote(closedpCI.t(.(d), dfreq = TRUE, m = "Mth", h = "Chao")),
  bquote(closedpCI.t(.(d), dfreq = TRUE, m = "Mth", h = "Darroch")))

# Zero-truncated binomial(6) on the hares' numbers of captures; VGAM gives N-hat = n / (1 - (1-p)^6), SE.
k6 <- data.frame(k = rowSums(hare))
ztb <- run(quote(vglm(cbind(k, 6 - k) ~ 1, posbinomial, data = k6)))
p_hat <- unname(Coef(ztb$value)["prob"])

refs <- list(
  versions = list(R = R.version.string, Rcapture = as.character(packageVersion("Rcapture")),
                  singleRcapture = as.character(packageVersion("singleRcapture")),
                  VGAM = as.character(packageVersion("VGAM"))),
  data_checks = checks,
  hare = list(
    closedp.t = closedp_table(quote(closedp.t(hare))),
    closedp.0 = closedp_table(quote(closedp.0(hare_fk, dfreq = TRUE, dtype = "nbcap", t = 6))),
    closedpCI.t = closedp_ci(ci_hare),
    closedpCI.0 = closedp_ci(list(
      quote(closedpCI.0(hare_fk, dfreq = TRUE, dtype = "nbcap", t = 6, m = "M0")),
      quote(closedpCI.0(hare_fk, dfreq = TRUE, dtype = "nbcap", t = 6, m = "Mh", h = "Poisson",
                        h.control = list(theta = 2))))),
    zt_binomial = list(p_hat = p_hat, logit_p = unname(coef(ztb$value)),
      logit_p_stderr = unname(sqrt(diag(vcov(ztb$value)))), N_hat = ztb$value@extra$N.hat,
      N_hat_stderr = ztb$value@extra$SE.N.hat, N_hat_formula = nrow(hare) / (1 - (1 - p_hat)^6),
      loglik = logLik(ztb$value), warnings = ztb$warnings, call = ztb$call)),
  netherlands_immigrants = list(
    closedp.0 = closedp_table(quote(closedp.0(dutch_fk, dfreq = TRUE, dtype = "nbcap", t = Inf))),
    closedpCI.0 = closedp_ci(list(
      quote(closedpCI.0(dutch_fk, dfreq = TRUE, dtype = "nbcap", t = Inf, m = "M0")),
      quote(closedpCI.0(dutch_fk, dfreq = TRUE, dtype = "nbcap", t = Inf, m = "Mh", h = "Poisson",
                        h.control = list(theta = 2))),
      quote(closedpCI.0(dutch_fk, dfreq = TRUE, dtype = "nbcap", t = Inf, m = "Mh", h = "Darroch")),
      quote(closedpCI.0(dutch_fk, dfreq = TRUE, dtype = "nbcap", t = Inf, m = "Mh", h = "Gamma",
                        h.control = list(theta = 3.5))),
      quote(closedpCI.0(dutch_fk, dfreq = TRUE, dtype = "nbcap", t = Inf, m = "Mh", h = "Chao")))),
    singleRcapture = list(
      `chao ~ 1` = single(quote(estimatePopsize(capture ~ 1, data = dutch, model = "chao"))),
      `chao ~ gender + age + nation` = single(quote(
        estimatePopsize(capture ~ gender + age + nation, data = dutch, model = "chao"))),
      `zelterman ~ 1` = single(quote(estimatePopsize(capture ~ 1, data = dutch, model = "zelterman"))),
      `zelterman ~ gender + age` = single(quote(
        estimatePopsize(capture ~ gender + age, data = dutch, model = "zelterman"))),
      `ztpoisson ~ 1` = single(quote(estimatePopsize(capture ~ 1, data = dutch, model = "ztpoisson"))))),
  kosovo = list(
    closedp.t = closedp_table(quote(closedp.t(kosovo, dfreq = TRUE))),
    closedpCI.t = closedp_ci(c(ci_lists(quote(kosovo)), list(
      quote(closedpCI.t(kosovo, dfreq = TRUE, mX = ~. + c1:c2, mname = "Mt + c1:c2")),
      quote(closedpCI.t(kosovo, dfreq = TRUE, mX = ~. + c1:c3 + c2:c4, mname = "Mt + c1:c3 + c2:c4")))))),
  uk = list(
    closedp.t = closedp_table(quote(closedp.t(uk, dfreq = TRUE))),
    closedpCI.t = closedp_ci(c(ci_lists(quote(uk)), list(
      quote(closedpCI.t(uk, dfreq = TRUE, mX = ~. + c1:c2, mname = "Mt + c1:c2"))))))
)

# Text companion: one line per number, "path = value", 10 significant digits; calls and warnings verbatim.
flatten <- function(x, path) {
  if (is.list(x)) return(unlist(lapply(names(x), function(n) flatten(x[[n]], c(path, n)))))
  if (length(x) == 0) return(character())
  val <- if (is.numeric(x)) format(x, digits = 10) else as.character(x)
  sprintf("%s = %s", paste(path, collapse = " / "), paste(val, collapse = ", "))
}
write_atomic <- function(text, path) {  # write beside the target, then rename: no half-written file
  tmp <- paste0(path, ".tmp"); writeLines(text, tmp); invisible(file.rename(tmp, path))
}
write_atomic(toJSON(refs, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"), out_json)
write_atomic(c("# R peer reference numbers (scripts/r_references.R); path = value", flatten(refs, NULL)),
             sub("(\\.json)?$", ".txt", out_json))
