// The one translation unit that compiles Boost.Asio (with its OpenSSL part) and Boost.JSON (both
// would otherwise be instantiated in every file that includes them). Consumers get
// BOOST_ASIO_SEPARATE_COMPILATION through the vmrt target, so they link these symbols from libvmrt.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/json/src.hpp>
