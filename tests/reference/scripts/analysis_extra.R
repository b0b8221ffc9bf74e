# Expected values for tests/test_analysis_*.py that the shared reference folder does not hold.
# Run from the repository root:  Rscript tests/reference/scripts/analysis_extra.R
# Writes tests/reference/expected/analysis_extra.json. R 4.2.2 (Debian 12): survival 3.5-3,
# epiR 2.0.57, coin 1.4-2 (apt-get install r-base-core r-cran-survival r-cran-epir r-cran-coin).
suppressMessages({library(survival); library(epiR); library(coin)})
options(digits = 15)
ref <- "tests/reference/data"
out <- list(versions = list(R = R.version.string,
                            survival = as.character(packageVersion("survival")),
                            epiR = as.character(packageVersion("epiR")),
                            coin = as.character(packageVersion("coin"))))
num <- function(x) unname(as.numeric(x))

# --- Mantel-Haenszel RR (Greenland-Robins), OR (RBG) and RD (Sato; Greenland-Robins) via epiR -----
mh <- function(tab) {
  r <- epi.2by2(dat = tab, method = "cohort.count", conf.level = 0.95, units = 1,
                outcome = "as.columns")$massoc.detail
  lapply(list(RR_mh_wald = r$RR.mh.wald, OR_mh_wald = r$OR.mh.wald,
              RD_mh_sato = r$ARisk.mh.sato, RD_mh_greenland = r$ARisk.mh.green),
         function(x) list(est = num(x$est), lower = num(x$lower), upper = num(x$upper)))
}
infert <- read.csv(file.path(ref, "infert.csv"))
# rows: exposure = case (treated) first; columns: outcome = induced > 0 first; one table per stratum
out$mh_infert <- c(list(call = paste(
  "epi.2by2(table(factor(case, c(1, 0)), factor(induced > 0, c(TRUE, FALSE)), stratum),",
  "method = 'cohort.count')")), mh(table(factor(infert$case, levels = c(1, 0)),
  factor(infert$induced > 0, levels = c(TRUE, FALSE)), infert$stratum)))
out$mh_ucb <- c(list(call = "epi.2by2(aperm(UCBAdmissions, c(2, 1, 3)), method = 'cohort.count')"),
                mh(aperm(UCBAdmissions, c(2, 1, 3))))

# --- lung: Cox with robust variance clustered on institution; stratified log-rank by inst ------
lung <- read.csv(file.path(ref, "lung.csv"))
l2 <- lung[!is.na(lung$inst), ]
fit <- coxph(Surv(time, status) ~ sex + cluster(inst), data = l2)
s <- summary(fit)$coefficients
ci <- summary(fit)$conf.int
out$cox_cluster_inst <- list(call = "coxph(Surv(time, status) ~ sex + cluster(inst), data = lung[!is.na(lung$inst), ])",
  coef = num(s[1, "coef"]), se = num(s[1, "se(coef)"]), robust_se = num(s[1, "robust se"]),
  z = num(s[1, "z"]), p = num(s[1, "Pr(>|z|)"]), hr = num(ci[1, "exp(coef)"]),
  hr_lower95 = num(ci[1, "lower .95"]), hr_upper95 = num(ci[1, "upper .95"]))
sd <- survdiff(Surv(time, status) ~ sex + strata(inst), data = l2)
out$logrank_strata_inst <- list(call = "survdiff(Surv(time, status) ~ sex + strata(inst), data = lung[!is.na(lung$inst), ])",
  observed = num(sd$obs), expected = num(sd$exp), chisq = num(sd$chisq),
  p = pchisq(sd$chisq, 1, lower.tail = FALSE))

# --- lung: restricted mean survival time by sex ------------------------------------------------
km <- survfit(Surv(time, status) ~ sex, data = lung)
rmst <- list()
for (tau in c(365, 730)) {
  tb <- summary(km, rmean = tau)$table
  rmst[[as.character(tau)]] <- list(tau = tau, rmean = num(tb[, "rmean"]), se = num(tb[, "se(rmean)"]),
                                    strata = rownames(tb))
}
out$rmst_lung_sex <- list(call = "summary(survfit(Surv(time, status) ~ sex, data = lung), rmean = tau)$table",
                          by_tau = rmst)

# --- coin: van Elteren (ranks within sets) and aligned-rank test, mercury 1:2 sets ---------------
merc <- read.csv(file.path(ref, "sensitivitymv_mercury.csv"))
long <- data.frame(set = factor(rep(seq_len(nrow(merc)), 3)),
                   g = factor(rep(c("treated", "control", "control"), each = nrow(merc)),
                              levels = c("control", "treated")),
                   y = c(merc$Treated, merc$Zero, merc$One))
# ranks within each set (trafo(block = )), permuted within sets; all sets have 3 members, so
# van Elteren's weight 1/(n_s + 1) = 1/4 is a constant and the standardized statistic is van Elteren's
ve <- independence_test(y ~ g | set, data = long, distribution = "asymptotic",
                        ytrafo = function(data) trafo(data, numeric_trafo = rank_trafo, block = long$set))
# overall ranks, permuted within sets (what coin::wilcox_test(y ~ g | set) computes)
wt <- wilcox_test(y ~ g | set, data = long, distribution = "asymptotic")
# aligned ranks: y minus its set mean, rounded to 10 decimals so that float noise makes no ties
long$aligned <- rank(round(long$y - ave(long$y, long$set), 10))
at <- independence_test(aligned ~ g | set, data = long, distribution = "asymptotic")
out$coin_mercury <- list(
  van_elteren_call = "coin::independence_test(y ~ g | set, ytrafo = function(d) trafo(d, numeric_trafo = rank_trafo, block = set))",
  van_elteren_z = num(statistic(ve, type = "standardized")), van_elteren_p = num(pvalue(ve)),
  overall_rank_call = "coin::wilcox_test(y ~ g | set, distribution = 'asymptotic') (overall ranks, permuted within sets)",
  overall_rank_z = num(statistic(wt)), overall_rank_p = num(pvalue(wt)),
  aligned_call = "coin::independence_test(rank(round(y - ave(y, set), 10)) ~ g | set, distribution = 'asymptotic')",
  aligned_z = num(statistic(at, type = "standardized")), aligned_p = num(pvalue(at)),
  aligned_linear_control = num(statistic(at, type = "linear")),
  aligned_expectation_control = num(expectation(at)), aligned_variance = num(variance(at)),
  note = "g has levels control, treated: coin's linear statistic and z refer to the control level")

to_json <- function(x, indent = 0) {
  pad <- strrep(" ", indent + 1)
  if (is.list(x)) {
    keys <- names(x)
    items <- vapply(seq_along(x), function(i) {
      v <- to_json(x[[i]], indent + 1)
      if (is.null(keys)) paste0(pad, v) else paste0(pad, '"', keys[i], '": ', v)
    }, "")
    open <- if (is.null(keys)) "[" else "{"; close <- if (is.null(keys)) "]" else "}"
    return(paste0(open, "\n", paste(items, collapse = ",\n"), "\n", strrep(" ", indent), close))
  }
  if (is.character(x)) {
    v <- paste0('"', gsub('"', '\\\\"', x), '"')
  } else {
    v <- ifelse(is.na(x), "null", formatC(x, digits = 15, format = "g"))
    v <- trimws(v)
  }
  if (length(x) == 1) v else paste0("[", paste(v, collapse = ", "), "]")
}
writeLines(to_json(out), "tests/reference/expected/analysis_extra.json")
