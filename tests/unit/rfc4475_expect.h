/* What the message layer must make of each RFC 4475 torture message (the
 * right-hand column of tests/data/rfc4475/INDEX.md, down to the
 * foundation the server answers from).  Used by test_msg.c only. */
#ifndef SIPHA_TEST_RFC4475_EXPECT_H
#define SIPHA_TEST_RFC4475_EXPECT_H

#include <errno.h>
#include <stdbool.h>

enum t4475_kind {
	T_OK, /* request: parsed, check 0, a method sipha knows */
	T_UNKNOWN, /* request: parsed, check 0, SIP_UNKNOWN (server: 501) */
	T_CODE, /* request: parsed, check gives CODE */
	T_DROP, /* sipmsg_parse refuses it: dropped and counted */
	T_RESP_OK, /* response: parsed, sipmsg_check_response 0 */
	T_RESP_DROP, /* response: parsed, sipmsg_check_response -EBADMSG */
};

#define FR_WHOLE (-1L) /* sipmsg_frame: the whole file */

struct t4475 {
	const char *file;
	enum t4475_kind kind;
	int code;
	long frame; /* FR_WHOLE, or sipmsg_frame's exact result */
	bool shell; /* libosip2 refused it: kept with the response headers only */
};

static const struct t4475 t4475_table[] = {
	/* valid, however strange */
	{ "wsinv.dat", T_OK, 0, FR_WHOLE, false },
	{ "intmeth.dat", T_UNKNOWN, 0, FR_WHOLE, false },
	{ "esc01.dat", T_OK, 0, FR_WHOLE, false },
	{ "escnull.dat", T_OK, 0, FR_WHOLE, false },
	{ "esc02.dat", T_UNKNOWN, 0, FR_WHOLE, false },
	{ "lwsdisp.dat", T_OK, 0, FR_WHOLE, false },
	{ "longreq.dat", T_OK, 0, FR_WHOLE, false },
	{ "dblreq.dat", T_OK, 0, 300, false }, /* the REGISTER; the INVITE is its junk */
	{ "semiuri.dat", T_OK, 0, FR_WHOLE, false },
	{ "transports.dat", T_OK, 0, FR_WHOLE, false },
	{ "mpart01.dat", T_OK, 0, FR_WHOLE, false },
	{ "unreason.dat", T_RESP_OK, 0, FR_WHOLE, false },
	{ "noreason.dat", T_RESP_OK, 0, FR_WHOLE, false },
	/* invalid */
	{ "badinv01.dat", T_DROP, 0, FR_WHOLE, false }, /* its Via cannot be read */
	{ "clerr.dat", T_DROP, 0, 0, false }, /* a stream would wait for 9999 */
	{ "ncl.dat", T_CODE, 400, -EBADMSG, false },
	{ "scalar02.dat", T_CODE, 400, FR_WHOLE, false },
	{ "scalarlg.dat", T_RESP_DROP, 0, FR_WHOLE, false },
	{ "quotbal.dat", T_CODE, 400, FR_WHOLE, true },
	{ "ltgtruri.dat", T_CODE, 400, FR_WHOLE, true },
	{ "lwsruri.dat", T_CODE, 400, FR_WHOLE, true },
	{ "lwsstart.dat", T_CODE, 400, FR_WHOLE, true },
	{ "trws.dat", T_CODE, 400, FR_WHOLE, true },
	{ "escruri.dat", T_CODE, 400, FR_WHOLE, false },
	{ "baddate.dat", T_OK, 0, FR_WHOLE, false }, /* Date is not interpreted */
	{ "regbadct.dat", T_CODE, 400, FR_WHOLE, false },
	{ "badaspec.dat", T_CODE, 400, FR_WHOLE, true },
	{ "baddn.dat", T_CODE, 400, FR_WHOLE, true },
	{ "badvers.dat", T_CODE, 505, FR_WHOLE, false },
	{ "mismatch01.dat", T_CODE, 400, FR_WHOLE, false },
	{ "mismatch02.dat", T_CODE, 400, FR_WHOLE, false },
	{ "bigcode.dat", T_DROP, 0, FR_WHOLE, false },
	/* transaction layer and application */
	{ "badbranch.dat", T_OK, 0, FR_WHOLE, false },
	{ "insuf.dat", T_CODE, 400, FR_WHOLE, false },
	{ "unkscm.dat", T_CODE, 416, FR_WHOLE, false },
	{ "novelsc.dat", T_CODE, 416, FR_WHOLE, true }, /* libosip2 cannot read the URI */
	{ "unksm2.dat", T_OK, 0, FR_WHOLE, false }, /* the registrar refuses the AoR */
	{ "bext01.dat", T_CODE, 420, FR_WHOLE, false },
	{ "invut.dat", T_CODE, 415, FR_WHOLE, false },
	{ "regaut01.dat", T_OK, 0, FR_WHOLE, false },
	{ "multi01.dat", T_CODE, 400, FR_WHOLE, true },
	{ "mcl01.dat", T_CODE, 400, -EBADMSG, true },
	{ "bcast.dat", T_RESP_OK, 0, FR_WHOLE, false }, /* no transaction: dropped above */
	{ "zeromf.dat", T_OK, 0, FR_WHOLE, false },
	{ "cparam01.dat", T_OK, 0, FR_WHOLE, false },
	{ "cparam02.dat", T_OK, 0, FR_WHOLE, false },
	{ "regescrt.dat", T_OK, 0, FR_WHOLE, false },
	{ "sdp01.dat", T_OK, 0, FR_WHOLE, false }, /* 406 is the call layer's */
	/* backward compatibility: no Content-Length, so no stream can carry it */
	{ "inv2543.dat", T_OK, 0, -EBADMSG, false },
};

#endif
