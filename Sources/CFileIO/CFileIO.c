#define _GNU_SOURCE
#include <fcntl.h>
#include <errno.h>
#include "CFileIO.h"

int nimbus_start_writeback(int fd, int64_t offset, int64_t length) {
#ifdef __linux__
    return sync_file_range(fd, (off_t)offset, (off_t)length, SYNC_FILE_RANGE_WRITE);
#else
    // Elsewhere the final fsync does all the writing.
    (void)fd; (void)offset; (void)length;
    return 0;
#endif
}

#ifdef __linux__
#include <sched.h>
#endif

int nimbus_enter_network_namespace(int fd) {
#ifdef __linux__
    return setns(fd, CLONE_NEWNET);
#else
    (void)fd;
    errno = ENOSYS;
    return -1;
#endif
}
