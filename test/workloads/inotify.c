/* inotify DIR STATEFILE: one inotify instance watching DIR (IN_CREATE) and DIR/watched
 * (IN_MODIFY) under watch numbers 1 and 3 (a watch added and removed in between). On SIGUSR1 it
 * creates DIR/new-N and writes to DIR/watched, then reads its events: "check ok wds=1,3" when
 * both arrive under the right numbers (and the name), "check bad ..." otherwise. */
#include <poll.h>
#include <sys/inotify.h>
#include "workload.h"

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	const char *dir = argv[1];
	char watched[4096], extra[4096];
	snprintf(watched, sizeof watched, "%s/watched", dir);
	snprintf(extra, sizeof extra, "%s/extra", dir);
	wl_detach(argv[2]);
	int w = open(watched, O_CREAT | O_WRONLY, 0600), x = open(extra, O_CREAT | O_WRONLY, 0600);
	if (w < 0 || x < 0) { wl_say("error create"); return 1; }
	close(x);
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	int wd1 = inotify_add_watch(in, dir, IN_CREATE);
	int wd2 = inotify_add_watch(in, extra, IN_ATTRIB);
	inotify_rm_watch(in, wd2);
	int wd3 = inotify_add_watch(in, watched, IN_MODIFY);
	if (in < 0 || wd1 != 1 || wd2 != 2 || wd3 != 3) { wl_say("error inotify %d %d %d", wd1, wd2, wd3); return 1; }
	char buf[4096];
	while (read(in, buf, sizeof buf) > 0) ; /* the IN_IGNORED of watch 2 */
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (int n = 0;; n++) {
		wl_wait_check();
		char name[64], path[4200];
		snprintf(name, sizeof name, "new-%d", n);
		snprintf(path, sizeof path, "%s/%s", dir, name);
		int f = open(path, O_CREAT | O_WRONLY, 0600);
		if (f >= 0) close(f);
		if (write(w, "x", 1) != 1) { wl_say("check bad write"); continue; }
		int created = 0, modified = 0, other = 0;
		for (int tries = 0; tries < 50 && !(created && modified); tries++) {
			struct pollfd p = { in, POLLIN, 0 };
			poll(&p, 1, 20);
			ssize_t len = read(in, buf, sizeof buf);
			for (ssize_t o = 0; len > 0 && o < len;) {
				struct inotify_event *e = (struct inotify_event *)(buf + o);
				if (e->wd == 1 && (e->mask & IN_CREATE) && e->len && !strcmp(e->name, name)) created = 1;
				else if (e->wd == 3 && (e->mask & IN_MODIFY)) modified = 1;
				else other++;
				o += sizeof *e + e->len;
			}
		}
		if (created && modified && !other) wl_say("check ok wds=1,3");
		else wl_say("check bad created=%d modified=%d other=%d", created, modified, other);
	}
}
