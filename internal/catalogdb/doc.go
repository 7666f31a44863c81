// Package catalogdb opens the pebble databases in which a node service
// keeps its catalogues (the shuffle service's map outputs, the block
// store's disk blocks). Each database is bound to the node's list of
// local directories: its records name files by directory, so reopening it
// with other directories, or the same in another order, would look for
// every file in the wrong place. Open refuses that. A node service's
// catalogue is also bound to the node's name (BindName): a directory is
// one node's, whatever address that node has.
package catalogdb
