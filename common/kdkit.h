/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What kdkit.ko offers the lab test suites.
 *
 * A lab's suites are linked into one module with the student's files. That
 * module never runs the student's init or exit on its own: the tests call
 * them, so that each case starts from a fresh driver and a failing init can
 * be examined instead of aborting the load.
 */
#ifndef KDKIT_H
#define KDKIT_H

/* Run the student's module_init(); 0 if the module has none. */
int kdkit_driver_init(void);
/* Run the student's module_exit(), if it has one. */
void kdkit_driver_exit(void);

#endif /* KDKIT_H */
