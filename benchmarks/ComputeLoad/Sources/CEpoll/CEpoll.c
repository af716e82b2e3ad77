// Empty: the target only exists to export <sys/epoll.h> (see include/CEpoll.h).
#include "CEpoll.h"
