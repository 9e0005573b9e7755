/* Private to docker.c and docker-exec.c: the engine handle's fields. */
#ifndef LB_DOCKER_INTERNAL_H
#define LB_DOCKER_INTERNAL_H

#include "common.h"

#include <curl/curl.h>

struct docker {
	char *desc;	 /* for messages: unix:///var/run/docker.sock */
	char *unix_path; /* unix socket, or NULL for TCP */
	char *tcp_host;
	char *tcp_port;
	char *base; /* http://localhost or http://HOST:PORT */
	char api[16];
	CURL *h;
};

#endif
