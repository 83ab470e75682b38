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

void live_report(struct load *ld, struct ld_report *r)
{
	double dt = (double)(ld->now_us - r->at_us) / 1e6;
	uint64_t ended = ld->st.ok + ld->st.failed;

	if (dt <= 0)
		return;
	if (ld->o.uac)
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
	r->at_us = ld->now_us;
	r->started = ld->st.started;
	r->ended = ended;
	r->uas_invites = ld->st.uas_invites;
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

void summary(struct load *ld, double wall, double cpu, FILE *f)
{
	const struct ld_stats *s = &ld->st;

	if (ld->o.uac) {
		fprintf(f,
			"sipha-load: %" PRIu64 " calls placed, %" PRIu64 " ok, %" PRIu64
			" failed, %u still up; %" PRIu64 " retransmissions\n",
			s->started, s->ok, s->failed, ld->active, s->retrans);
		fprintf(f, "  %.2f s, %.1f calls/s ended; CPU %.3f s (%.0f calls per CPU-second)\n",
			wall, (double)(s->ok + s->failed) / (wall > 0 ? wall : 1), cpu,
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
			for (int i = 0; i < 700; i++)
				if (s->status[i])
					fprintf(f, ", %d: %" PRIu64, i, s->status[i]);
			fprintf(f, "\n");
		}
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
	if (ld->o.uas)
		fprintf(f,
			"sipha-load UAS: %" PRIu64 " INVITEs, %" PRIu64 " ACKs, %" PRIu64
			" BYEs, %" PRIu64 " other requests answered; CPU %.3f s\n",
			s->uas_invites, s->uas_acks, s->uas_byes, s->uas_other, cpu);
}

void json_out(struct load *ld, double wall, double cpu)
{
	const struct ld_stats *s = &ld->st;
	uint64_t ok = ld->o.uac ? s->ok : s->uas_byes;
	bool first = true;

	printf("{\"mode\":\"%s\",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"started\":%" PRIu64
	       ",\"active\":%u,\"retransmissions\":%" PRIu64 ",\"cpu_s\":%.4f,\"wall_s\":%.3f,",
	       ld->o.uac && ld->o.uas ? "uac+uas"
	       : ld->o.uac	      ? "uac"
				      : "uas",
	       ok, s->failed, s->started, ld->active, s->retrans, cpu, wall);
	json_hist(stdout, "setup_us", &ld->setup);
	putchar(',');
	json_hist(stdout, "invite_us", &ld->txn_invite);
	putchar(',');
	json_hist(stdout, "bye_us", &ld->txn_bye);
	printf(",\"failures\":{\"timeout\":%" PRIu64 ",\"transport\":%" PRIu64
	       ",\"bad_answer\":%" PRIu64 ",\"status\":{",
	       s->timeouts, s->transport, s->bad_answer);
	for (int i = 0; i < 700; i++)
		if (s->status[i]) {
			printf("%s\"%d\":%" PRIu64, first ? "" : ",", i, s->status[i]);
			first = false;
		}
	printf("}},\"challenges\":%" PRIu64 ",\"tcp\":{\"connects\":%" PRIu64 ",\"lost\":%" PRIu64
	       ",\"connect_failed\":%" PRIu64 "}",
	       s->challenges, s->connects, s->conn_lost, s->connect_failed);
	printf(",\"stray\":%" PRIu64 ",\"junk\":%" PRIu64 ",\"acked_again\":%" PRIu64
	       ",\"uas\":{\"invites\":%" PRIu64 ",\"acks\":%" PRIu64 ",\"byes\":%" PRIu64
	       ",\"other\":%" PRIu64 "}}\n",
	       s->stray, s->junk, s->rx_retrans, s->uas_invites, s->uas_acks, s->uas_byes,
	       s->uas_other);
	fflush(stdout);
}

int write_hists(struct load *ld)
{
	FILE *f = fopen(ld->o.hist_path, "w");
	int err;

	if (!f) {
		err = -errno;
		fprintf(stderr, "sipha-load: --hist %s: %s\n", ld->o.hist_path, strerror(-err));
		return err;
	}
	err = hist_write(&ld->setup, f, "set-up INVITE->200, microseconds (index 0)");
	fprintf(f, "\n\n");
	if (!err)
		err = hist_write(&ld->txn_invite, f,
				 "INVITE->final answer, microseconds (index 1)");
	fprintf(f, "\n\n");
	if (!err)
		err = hist_write(&ld->txn_bye, f, "BYE->final answer, microseconds (index 2)");
	if (fclose(f) && !err)
		err = -errno;
	if (err)
		fprintf(stderr, "sipha-load: --hist %s: %s\n", ld->o.hist_path, strerror(-err));
	return err;
}
