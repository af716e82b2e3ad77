#ifndef NIMBUS_CFILEIO_H
#define NIMBUS_CFILEIO_H

#include <stdint.h>

/// Starts writeback of [offset, offset + length) of fd without waiting for it
/// (Linux sync_file_range with SYNC_FILE_RANGE_WRITE). Returns 0, or -1 with errno set.
/// Swift's Glibc module does not export sync_file_range, which needs _GNU_SOURCE.
int nimbus_start_writeback(int fd, int64_t offset, int64_t length);

/// setns(fd, CLONE_NEWNET): moves the calling thread into the network namespace `fd` refers
/// to (Swift's Glibc module lacks setns, a _GNU_SOURCE function). 0, or -1 with errno.
int nimbus_enter_network_namespace(int fd);

#endif
