/* fd and file-system helpers (fs.h). */
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "fs.h"
#include "strbuf.h"
#include "xalloc.h"

int read_file_capped(const char *path, size_t max, struct strbuf *sb)
{
	auto_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	char buf[4096];

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read_retry(fd, buf, sizeof(buf));
		if (n < 0) {
			explicit_bzero(buf, sizeof(buf));
			return (int)n;
		}
		if (n == 0)
			break;
		if (sb->len + (size_t)n > max) {
			explicit_bzero(buf, sizeof(buf));
			return -EFBIG;
		}
		strbuf_add(sb, buf, (size_t)n);
	}
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t read_retry(int fd, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = read(fd, buf, len);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

bool pipe_batch_ok(int fd)
{
	int size = fcntl(fd, F_GETPIPE_SZ);
	return size >= PIPE_BATCH_MIN_PIPE;
}

int pipe_batch_wait(int fd, int wake, size_t got, size_t asked)
{
	struct pollfd w = { .fd = wake, .events = POLLIN };
	int avail = 0;

	if (got >= asked || got >= PIPE_BATCH)
		return 0;
	if (ioctl(fd, FIONREAD, &avail) < 0 || avail < 0 || (size_t)avail >= PIPE_BATCH)
		return 0;
	/* A bounded wait, not a sleep: `wake` ends it early (EINTR too: the caller goes on). */
	if (poll(&w, 1, PIPE_BATCH_WAIT_MS) > 0 && w.revents)
		return 1;
	return 0;
}

void close_fd(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
	*fd = -1;
}

int fsync_dir(const char *dir)
{
	auto_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		return -errno;
	return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	auto_free char *tmp = xasprintf("%s.%d.tmp", path, (int)getpid());
	auto_free char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	int r = fd < 0 ? -errno : write_all(fd, data, len);

	if (!r && fsync(fd) < 0)
		r = -errno;
	if (fd >= 0 && close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (!r)
		r = fsync_dir(slash == dir ? "/" : slash ? (*slash = '\0', dir) : ".");
	if (r < 0 && fd >= 0)
		unlink(tmp);
	return r;
}

static int remove_tree_at(int at, const char *name)
{
	struct stat st;

	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(at, name, 0) < 0 && errno != ENOENT ? -errno : 0;

	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int r = -errno;
		close(fd);
		return r;
	}
	int ret = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		int r = remove_tree_at(dirfd(d), de->d_name);
		if (r < 0 && !ret)
			ret = r;
	}
	closedir(d);
	if (unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT && !ret)
		ret = -errno;
	return ret;
}

int remove_tree(const char *path)
{
	return remove_tree_at(AT_FDCWD, path);
}
