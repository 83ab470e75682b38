/* sipha-load's reports: the live line each second, the final summary,
 * the --json object and the --hist file (docs/LOAD.md is their contract). */
#include "sipha-load/load.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static void live_reg(struct load *ld, struct ld_report *r, double dt)
{
	const struct ld_mstat *g = &ld->st.reg;

	fprintf(stderr,
		"%7.1f s  registers/s %6.0f  in flight %5u  ok %" PRIu64 "  failed %" PRIu64
		"  retrans %" PRIu64 "  register us p50 %" PRIu64 " p99 %" PRIu64 " p99.9 %" PRIu64
		"\n",
		(double)(ld->now_us - ld->t0_us) / 1e6, (double)(g->sent - r->reg_sent) / dt,
		ld->reg_inflight, g->ok, g->failed, g->retrans, hist_percentile(&ld->reg_iv, 50),
		hist_percentile(&ld->reg_iv, 99), hist_percentile(&ld->reg_iv, 99.9));
}

void live_report(struct load *ld, struct ld_report *r)
{
	double dt = (double)(ld->now_us - r->at_us) / 1e6;
	uint64_t ended = ld->st.ok + ld->st.failed;

	if (dt <= 0)
		return;
	if (ld->reg_phase || (ld->o.reg_n && !ld->o.uac && !ld->o.uas))
		live_reg(ld, r, dt);
	else if (ld->o.uac)
		fprintf(stderr,
			"%7.1f s  calls/s %6.0f  ended/s %6.0f  active %5u  ok %" PRIu64
			"  failed %" PRIu64 "  retrans %" PRIu64 "  setup us p50 %" PRIu64
			" p99 %" PRIu64 " p99.9 %" PRIu64 "\n",
			(double)(ld->now_us - ld->t0_us) / 1e6,
			(double)(ld->st.started - r->started) / dt, (double)(ended - r->ended) / dt,
			ld->active, ld->st.ok, ld->st.failed, ld->st.retrans,
			hist_percentile(&ld->setup_iv, 50), hist_percentile(&ld->setup_iv, 99),
			hist_percentile(&ld->setup_iv, 99.9));
	else
		fprintf(stderr,
			"%7.1f s  invites/s %6.0f  invites %" PRIu64 "  byes %" PRIu64
			"  other %" PRIu64 "\n",
			(double)(ld->now_us - ld->t0_us) / 1e6,
			(double)(ld->st.uas_invites - r->uas_invites) / dt, ld->st.uas_invites,
			ld->st.uas_byes, ld->st.uas_other);
	hist_reset(&ld->setup_iv);
	hist_reset(&ld->reg_iv);
	r->at_us = ld->now_us;
	r->started = ld->st.started;
	r->ended = ended;
	r->uas_invites = ld->st.uas_invites;
	r->reg_sent = ld->st.reg.sent;
}

static void json_hist(FILE *f, const char *name, const struct hist *h)
{
	fprintf(f,
		"\"%s\":{\"count\":%" PRIu64 ",\"min\":%" PRIu64 ",\"mean\":%.1f,\"p50\":%" PRIu64
		",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64
		"}",
		name, h->count, h->count ? h->min : 0, hist_mean(h), hist_percentile(h, 50),
		hist_percentile(h, 90), hist_percentile(h, 99), hist_percentile(h, 99.9), h->max);
}

static void status_list(FILE *f, const uint64_t *status)
{
	for (int i = 0; i < 700; i++)
		if (status[i])
			fprintf(f, ", %d: %" PRIu64, i, status[i]);
}

/* "  NAME: sent, ok, failed (...); us p50 p99 max" for REGISTER, OPTIONS,
 * re-INVITE. */
static void summary_mstat(FILE *f, const char *name, const struct ld_mstat *m)
{
	fprintf(f,
		"  %s: %" PRIu64 " sent, %" PRIu64 " ok, %" PRIu64 " failed, %" PRIu64
		" retransmissions; us p50 %" PRIu64 " p99 %" PRIu64 " max %" PRIu64 "\n",
		name, m->sent, m->ok, m->failed, m->retrans, hist_percentile(&m->us, 50),
		hist_percentile(&m->us, 99), m->us.max);
	if (m->failed) {
		fprintf(f, "    failures: timeout %" PRIu64 ", transport %" PRIu64, m->timeouts,
			m->transport);
		status_list(f, m->status);
		fprintf(f, "\n");
	}
}

static void summary_calls(struct load *ld, double wall, double cpu, FILE *f)
{
	const struct ld_stats *s = &ld->st;

	fprintf(f,
		"sipha-load: %" PRIu64 " calls placed, %" PRIu64 " ok, %" PRIu64
		" failed, %u still up; %" PRIu64 " retransmissions\n",
		s->started, s->ok, s->failed, ld->active, s->retrans);
	fprintf(f, "  %.2f s, %.1f calls/s ended; CPU %.3f s (%.0f calls per CPU-second)\n", wall,
		(double)(s->ok + s->failed) / (wall > 0 ? wall : 1), cpu,
		cpu > 0 ? (double)(s->ok + s->failed) / cpu : 0.0);
	fprintf(f,
		"  set-up INVITE->200 us: min %" PRIu64 " p50 %" PRIu64 " p90 %" PRIu64
		" p99 %" PRIu64 " p99.9 %" PRIu64 " max %" PRIu64 "\n",
		ld->setup.count ? ld->setup.min : 0, hist_percentile(&ld->setup, 50),
		hist_percentile(&ld->setup, 90), hist_percentile(&ld->setup, 99),
		hist_percentile(&ld->setup, 99.9), ld->setup.max);
	fprintf(f, "  BYE->200 us: p50 %" PRIu64 " p99 %" PRIu64 " max %" PRIu64 "\n",
		hist_percentile(&ld->txn_bye, 50), hist_percentile(&ld->txn_bye, 99),
		ld->txn_bye.max);
	if (s->failed) {
		fprintf(f,
			"  failures: timeout %" PRIu64 ", transport %" PRIu64
			", bad answer %" PRIu64,
			s->timeouts, s->transport, s->bad_answer);
		status_list(f, s->status);
		fprintf(f, "\n");
	}
	if (ld->o.hold.kind != LD_FIXED)
		fprintf(f, "  hold ms: min %" PRIu64 " mean %.0f p50 %" PRIu64 " max %" PRIu64 "\n",
			ld->hold.count ? ld->hold.min : 0, hist_mean(&ld->hold),
			hist_percentile(&ld->hold, 50), ld->hold.max);
	if (ld->o.options_ms)
		summary_mstat(f, "OPTIONS", &s->opt);
	if (ld->o.reinvite)
		summary_mstat(f, "re-INVITE", &s->reinv);
	if (ld->o.max_rate)
		fprintf(f, "  max rate: %.1f calls/s sustained (%u steps; above: %.1f failed)\n",
			ld->search.lo, ld->nsteps, ld->search.hi);
}

void summary(struct load *ld, double wall, double cpu, FILE *f)
{
	const struct ld_stats *s = &ld->st;

	if (ld->o.uac)
		summary_calls(ld, wall, cpu, f);
	else if (ld->o.reg_n && !ld->o.uas)
		fprintf(f,
			"sipha-load: %" PRIu64 " REGISTERs, %" PRIu64 " ok, %" PRIu64
			" failed; %.2f s, %.1f REGISTERs/s ended; CPU %.3f s\n",
			s->reg.sent, s->reg.ok, s->reg.failed, wall,
			(double)(s->reg.ok + s->reg.failed) / (wall > 0 ? wall : 1), cpu);
	if (ld->o.reg_n) {
		summary_mstat(f, "REGISTER", &s->reg);
		fprintf(f, "    %" PRIu64 " challenged, %" PRIu64 " refreshes\n", s->reg.challenges,
			s->reg_refreshes);
	}
	if (ld->o.uac || ld->o.reg_n) {
		if (ld->o.tcp)
			fprintf(f,
				"  TCP: %" PRIu64 " connections opened, %" PRIu64 " lost, %" PRIu64
				" attempts failed\n",
				s->connects, s->conn_lost, s->connect_failed);
		if (s->stray || s->junk || s->rx_retrans)
			fprintf(f,
				"  stray answers %" PRIu64 ", unreadable datagrams %" PRIu64
				", 200s ACKed again %" PRIu64 "\n",
				s->stray, s->junk, s->rx_retrans);
	}
	if (ld->o.uas) {
		fprintf(f,
			"sipha-load UAS: %" PRIu64 " INVITEs, %" PRIu64 " ACKs, %" PRIu64
			" BYEs, %" PRIu64 " other requests answered; CPU %.3f s\n",
			s->uas_invites, s->uas_acks, s->uas_byes, s->uas_other, cpu);
		if (s->uas_inv_rtx || s->uas_rtx || s->uas_ack_timeouts || s->uas_cancels ||
		    s->uas_untracked)
			fprintf(f,
				"  UAS: %" PRIu64 " INVITEs answered again, %" PRIu64
				" final answers sent again, %" PRIu64 " never ACKed, %" PRIu64
				" CANCELed (487), %" PRIu64 " without state\n",
				s->uas_inv_rtx, s->uas_rtx, s->uas_ack_timeouts, s->uas_cancels,
				s->uas_untracked);
	}
}

static void json_status(FILE *f, const uint64_t *status)
{
	bool first = true;

	for (int i = 0; i < 700; i++)
		if (status[i]) {
			fprintf(f, "%s\"%d\":%" PRIu64, first ? "" : ",", i, status[i]);
			first = false;
		}
}

/* ,"NAME":{counts},"NAME_us":{histogram} */
static void json_mstat(FILE *f, const char *name, const struct ld_mstat *m)
{
	char hn[32];

	fprintf(f,
		",\"%s\":{\"sent\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64
		",\"timeout\":%" PRIu64 ",\"transport\":%" PRIu64 ",\"retransmissions\":%" PRIu64
		",\"challenges\":%" PRIu64 ",\"status\":{",
		name, m->sent, m->ok, m->failed, m->timeouts, m->transport, m->retrans,
		m->challenges);
	json_status(f, m->status);
	fputs("}},", f);
	snprintf(hn, sizeof(hn), "%s_us", name);
	json_hist(f, hn, &m->us);
}

static void json_maxrate(FILE *f, const struct load *ld)
{
	fprintf(f, ",\"max_rate\":{\"rate\":%.1f,\"failed_rate\":%.1f,\"steps\":[", ld->search.lo,
		ld->search.hi);
	for (unsigned i = 0; i < ld->nsteps; i++) {
		const struct ld_step_rec *r = &ld->steps[i];

		fprintf(f,
			"%s{\"rate\":%.1f,\"started\":%" PRIu64 ",\"judged\":%" PRIu64
			",\"failed_pct\":%.2f,\"setup_p99_us\":%" PRIu64 ",\"pass\":%s}",
			i ? "," : "", r->rate, r->started, r->judged, r->failed_pct, r->p99_us,
			r->pass ? "true" : "false");
	}
	fputs("]}", f);
}

void json_out(struct load *ld, double wall, double cpu)
{
	const struct ld_stats *s = &ld->st;
	bool reg_alone = !ld->o.uac && !ld->o.uas;
	uint64_t ok = ld->o.uac ? s->ok : reg_alone ? s->reg.ok : s->uas_byes;
	uint64_t failed = reg_alone ? s->reg.failed : s->failed;
	uint64_t started = reg_alone ? s->reg.sent : s->started;

	printf("{\"mode\":\"%s\",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"started\":%" PRIu64
	       ",\"active\":%u,\"retransmissions\":%" PRIu64 ",\"cpu_s\":%.4f,\"wall_s\":%.3f,",
	       ld->o.uac && ld->o.uas ? "uac+uas"
	       : ld->o.uac	      ? "uac"
	       : ld->o.uas	      ? "uas"
				      : "reg",
	       ok, failed, started, ld->active, s->retrans, cpu, wall);
	json_hist(stdout, "setup_us", &ld->setup);
	putchar(',');
	json_hist(stdout, "invite_us", &ld->txn_invite);
	putchar(',');
	json_hist(stdout, "bye_us", &ld->txn_bye);
	printf(",\"failures\":{\"timeout\":%" PRIu64 ",\"transport\":%" PRIu64
	       ",\"bad_answer\":%" PRIu64 ",\"status\":{",
	       s->timeouts, s->transport, s->bad_answer);
	json_status(stdout, s->status);
	printf("}},\"challenges\":%" PRIu64 ",\"tcp\":{\"connects\":%" PRIu64 ",\"lost\":%" PRIu64
	       ",\"connect_failed\":%" PRIu64 "}",
	       s->challenges, s->connects, s->conn_lost, s->connect_failed);
	printf(",\"stray\":%" PRIu64 ",\"junk\":%" PRIu64 ",\"acked_again\":%" PRIu64
	       ",\"uas\":{\"invites\":%" PRIu64 ",\"acks\":%" PRIu64 ",\"byes\":%" PRIu64
	       ",\"other\":%" PRIu64 ",\"cancels\":%" PRIu64 ",\"invite_retrans\":%" PRIu64
	       ",\"retransmissions\":%" PRIu64 ",\"ack_timeouts\":%" PRIu64
	       ",\"untracked\":%" PRIu64 "}",
	       s->stray, s->junk, s->rx_retrans, s->uas_invites, s->uas_acks, s->uas_byes,
	       s->uas_other, s->uas_cancels, s->uas_inv_rtx, s->uas_rtx, s->uas_ack_timeouts,
	       s->uas_untracked);
	json_mstat(stdout, "register", &s->reg);
	printf(",\"register_refreshes\":%" PRIu64, s->reg_refreshes);
	json_mstat(stdout, "options", &s->opt);
	json_mstat(stdout, "reinvite", &s->reinv);
	putchar(',');
	json_hist(stdout, "hold_ms", &ld->hold);
	if (ld->o.max_rate)
		json_maxrate(stdout, ld);
	puts("}");
	fflush(stdout);
}

int write_hists(struct load *ld)
{
	static const char *const titles[] = {
		"set-up INVITE->200, microseconds (index 0)",
		"INVITE->final answer, microseconds (index 1)",
		"BYE->final answer, microseconds (index 2)",
		"REGISTER->final answer, microseconds (index 3)",
		"OPTIONS (mid-call)->final answer, microseconds (index 4)",
		"re-INVITE->final answer, microseconds (index 5)",
	};
	const struct hist *h[] = { &ld->setup,	   &ld->txn_invite, &ld->txn_bye,
				   &ld->st.reg.us, &ld->st.opt.us,  &ld->st.reinv.us };
	FILE *f = fopen(ld->o.hist_path, "w");
	int err = 0;

	if (!f) {
		err = -errno;
		fprintf(stderr, "sipha-load: --hist %s: %s\n", ld->o.hist_path, strerror(-err));
		return err;
	}
	for (size_t i = 0; i < sizeof(h) / sizeof(h[0]) && !err; i++) {
		if (i)
			fprintf(f, "\n\n");
		err = hist_write(h[i], f, titles[i]);
	}
	if (fclose(f) && !err)
		err = -errno;
	if (err)
		fprintf(stderr, "sipha-load: --hist %s: %s\n", ld->o.hist_path, strerror(-err));
	return err;
}
