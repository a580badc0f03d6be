/*
 * schema.h — private to the store module: the list of forward migrations (see schema.c).
 */
#ifndef CB_STORE_SCHEMA_H
#define CB_STORE_SCHEMA_H

/* store_migrations[k - 1] is SQL that brings user_version k - 1 to k. */
extern const char *const store_migrations[];
extern const int store_n_migrations;

#endif
