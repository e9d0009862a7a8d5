/*
 * gai: resolve names with the C library's getaddrinfo(3), as an application in a pod does.
 *
 *   gai [-4|-6] NAME...
 *
 * Each NAME is resolved in a child process of its own, so every lookup starts from fresh resolver
 * state: after a timeout glibc switches the whole process to single-request mode, which would
 * hide every later loss. With neither -4 nor -6 the lookup is AF_UNSPEC with AI_ADDRCONFIG, the
 * hints most programs use, so glibc asks A and AAAA in parallel when the pod has an IPv6 address.
 *
 * One line per NAME on stdout, tab-separated:
 *   NAME  RESULT  MICROSECONDS  ADDRESS,ADDRESS,...  START
 * RESULT is OK or the EAI_* name of the error; START is when the lookup began, in microseconds
 * since the Unix epoch (CLOCK_REALTIME), for tests that place lookups against events. Built with gcc against glibc and with
 * musl-gcc -static against musl.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *eai_name(int rc) {
	switch (rc) {
	case EAI_NONAME: return "EAI_NONAME";
	case EAI_AGAIN: return "EAI_AGAIN";
	case EAI_FAIL: return "EAI_FAIL";
	case EAI_FAMILY: return "EAI_FAMILY";
	case EAI_MEMORY: return "EAI_MEMORY";
	case EAI_SERVICE: return "EAI_SERVICE";
	case EAI_SOCKTYPE: return "EAI_SOCKTYPE";
	case EAI_SYSTEM: return "EAI_SYSTEM";
	case EAI_BADFLAGS: return "EAI_BADFLAGS";
#ifdef EAI_NODATA
	case EAI_NODATA: return "EAI_NODATA";
#endif
#ifdef EAI_ADDRFAMILY
	case EAI_ADDRFAMILY: return "EAI_ADDRFAMILY";
#endif
	}
	return "EAI_OTHER";
}

static void lookup(const char *name, int family) {
	struct addrinfo hints, *res = NULL, *ai;
	struct timespec t0, t1, wall;
	char line[8192], addr[INET6_ADDRSTRLEN];
	size_t n;
	int rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = family == AF_UNSPEC ? AI_ADDRCONFIG : 0;

	clock_gettime(CLOCK_REALTIME, &wall);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = getaddrinfo(name, NULL, &hints, &res);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	n = (size_t)snprintf(line, sizeof line, "%s\t%s\t%lld\t", name, rc == 0 ? "OK" : eai_name(rc),
		(long long)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
	for (ai = rc == 0 ? res : NULL; ai != NULL && n < sizeof line - INET6_ADDRSTRLEN - 2; ai = ai->ai_next) {
		const void *a = ai->ai_family == AF_INET
			? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
			: (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
		if (inet_ntop(ai->ai_family, a, addr, sizeof addr) == NULL)
			continue;
		n += (size_t)snprintf(line + n, sizeof line - n, "%s%s", ai == res ? "" : ",", addr);
	}
	if (res != NULL)
		freeaddrinfo(res);
	printf("%s\t%lld\n", line, (long long)wall.tv_sec * 1000000 + wall.tv_nsec / 1000);
	fflush(stdout);
}

int main(int argc, char **argv) {
	int family = AF_UNSPEC, opt, status;

	while ((opt = getopt(argc, argv, "46")) != -1) {
		switch (opt) {
		case '4': family = AF_INET; break;
		case '6': family = AF_INET6; break;
		default:
			fprintf(stderr, "usage: %s [-4|-6] NAME...\n", argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = optind; i < argc; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			lookup(argv[i], family);
			_exit(0);
		}
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "gai: lookup of %s failed\n", argv[i]);
			return 1;
		}
	}
	return 0;
}
