/* Transitional: the headers util.h was split into (removed in the next commit). */
#ifndef LB_UTIL_H
#define LB_UTIL_H

#include "common.h"

#include "fs.h"
#include "parse.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

#endif
