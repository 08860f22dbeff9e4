/* SPDX-License-Identifier: MIT */
/*
 * vfio-uring-migrate: the destination's verdict. After the multifd stream (or instead of it,
 * when the destination failed first) the destination sends on channel 0 a tool-level message,
 * not part of QEMU's format: "VUMV" | be32 negated errno | be32 length | message.
 * The source keeps its devices stopped only when the verdict is 0; otherwise it resumes them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fdio.h"
#include "migrate.h"

#define VERDICT_MAGIC "VUMV"

int mig_send_verdict(int fd, int error, const char *msg)
{
	uint8_t hdr[12];
	uint32_t e = htonl((uint32_t)error), l;
	size_t len = strnlen(msg, MIG_VERDICT_MSG_MAX);

	l = htonl((uint32_t)len);
	memcpy(hdr, VERDICT_MAGIC, 4);
	memcpy(hdr + 4, &e, 4);
	memcpy(hdr + 8, &l, 4);
	int ret = send_full(fd, hdr, sizeof(hdr));
	return ret ? ret : send_full(fd, msg, len);
}

/* \return 0 (accepted), or a negated errno and why in msg: the destination's own words
 * ("destination: ..."), or what kept the verdict from arriving. */
int mig_recv_verdict(int fd, int timeout_ms, char *msg, size_t msg_len)
{
	char text[MIG_VERDICT_MSG_MAX + 1];
	uint8_t hdr[12];
	uint32_t e, l;
	int ret = recv_full(fd, hdr, sizeof(hdr), timeout_ms);

	msg[0] = '\0';
	if (ret < 0) {
		snprintf(msg, msg_len, "no verdict from the destination (%s)", strerror(-ret));
		return ret;
	}
	if (memcmp(hdr, VERDICT_MAGIC, 4) != 0) {
		snprintf(msg, msg_len, "bad verdict from the destination");
		return -EPROTO;
	}
	memcpy(&e, hdr + 4, 4);
	memcpy(&l, hdr + 8, 4);
	l = ntohl(l);
	if (l > MIG_VERDICT_MSG_MAX) {
		snprintf(msg, msg_len, "bad verdict length from the destination");
		return -EPROTO;
	}
	ret = recv_full(fd, text, l, timeout_ms);
	if (ret < 0) {
		snprintf(msg, msg_len, "truncated verdict from the destination");
		return ret;
	}
	text[l] = '\0';
	ret = (int)ntohl(e);
	if (ret > 0) {
		snprintf(msg, msg_len, "bad verdict from the destination (error %d)", ret);
		return -EPROTO;
	}
	if (ret < 0)
		snprintf(msg, msg_len, "destination: %s", text[0] ? text : strerror(-ret));
	return ret;
}
