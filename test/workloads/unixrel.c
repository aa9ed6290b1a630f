/* unixrel DIR STATEFILE: datagram sockets bound to relative names (zdtm sk-unix-rel,
 * fifo_upon_unix_socket01), the task's working directory changed since:
 *  a: bound to "a.sock" in DIR, with a socket connected to it by that relative name;
 *  f: bound to "f.sock" in DIR, with a socket connected to it; then the file unlinked and a
 *     FIFO made at the name, held open read-write;
 * then the task goes to "/". On SIGUSR1: each bound socket still has its relative name
 * (getsockname), a datagram goes through each connection, a byte through the FIFO, DIR/a.sock
 * is a socket and DIR/f.sock the FIFO: "check ok" or "check bad: what". */
#include "workload.h"
#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static char dir[4096];
static int a[2], f[2], fifo = -1;

static socklen_t relname(struct sockaddr_un *s, const char *name) {
	memset(s, 0, sizeof *s);
	s->sun_family = AF_UNIX;
	strcpy(s->sun_path, name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1);
}

static int pair(int p[2], const char *name) {
	struct sockaddr_un s;
	socklen_t l = relname(&s, name);
	p[0] = socket(AF_UNIX, SOCK_DGRAM, 0);
	p[1] = socket(AF_UNIX, SOCK_DGRAM, 0);
	return p[0] < 0 || p[1] < 0 || bind(p[0], (struct sockaddr *)&s, l) || connect(p[1], (struct sockaddr *)&s, l) ? -1 : 0;
}

static const char *check(void) {
	static char what[256];
	struct { int *p; const char *name; } socks[] = {{a, "a.sock"}, {f, "f.sock"}};
	for (int i = 0; i < 2; i++) {
		struct sockaddr_un s;
		socklen_t l = sizeof s;
		memset(&s, 0, sizeof s);
		if (getsockname(socks[i].p[0], (struct sockaddr *)&s, &l) || strcmp(s.sun_path, socks[i].name)) {
			snprintf(what, sizeof what, "name-%s(%s)", socks[i].name, s.sun_path);
			return what;
		}
		char c = 'x';
		if (send(socks[i].p[1], &c, 1, 0) != 1 || recv(socks[i].p[0], &c, 1, MSG_DONTWAIT) != 1) {
			snprintf(what, sizeof what, "dgram-%s(errno %d)", socks[i].name, errno);
			return what;
		}
	}
	char c = 'y';
	if (write(fifo, &c, 1) != 1 || read(fifo, &c, 1) != 1 || c != 'y') return "fifo";
	char p[4200];
	struct stat st;
	snprintf(p, sizeof p, "%s/a.sock", dir);
	if (stat(p, &st) || !S_ISSOCK(st.st_mode)) return "a.sock-file";
	snprintf(p, sizeof p, "%s/f.sock", dir);
	if (stat(p, &st) || !S_ISFIFO(st.st_mode)) return "f.sock-fifo";
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	snprintf(dir, sizeof dir, "%s", argv[1]);
	wl_detach(argv[2]);
	signal(SIGUSR1, wl_on_usr1);
	if (chdir(dir) || pair(a, "a.sock") || pair(f, "f.sock") || unlink("f.sock") || mkfifo("f.sock", 0600) || (fifo = open("f.sock", O_RDWR)) < 0 || chdir("/")) {
		wl_say("error setup errno=%d", errno);
		return 1;
	}
	wl_say("ready pid=%d", (int)getpid());
	wl_answer(check);
}
