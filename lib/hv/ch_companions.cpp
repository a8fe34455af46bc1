#include "hv/ch_companions.hpp"

namespace vmrt::hv {

std::unique_ptr<ch_companion> start_virtiofsd(boost::asio::any_io_executor, const shared_dir_spec&,
                                              const std::filesystem::path&, const std::filesystem::path&,
                                              const std::filesystem::path&, std::function<void(std::string)>) {
    throw error(make_error_code(errc::unsupported), {.message = "virtiofsd sidecars: not wired yet"});
}

std::unique_ptr<ch_companion> open_tap(const nic_spec&, const std::optional<std::string>&, int&) {
    throw error(make_error_code(errc::unsupported), {.message = "TAP devices: not wired yet"});
}

}  // namespace vmrt::hv
