// write_seed_iso: render the seed's documents and write them as a NoCloud seed disk.
#include <vmrt/image/iso9660.hpp>
#include <vmrt/image/seed.hpp>

namespace vmrt::image {

iso_files seed_iso_files(const seed_documents& docs) {
    iso_files files{{"meta-data", docs.meta_data}, {"user-data", docs.user_data}};
    if (docs.network_config) files.emplace("network-config", *docs.network_config);
    return files;
}

void write_seed_iso(const seed_config& config, const std::filesystem::path& out) {
    // NoCloud finds its seed by the file system label "cidata" (or "CIDATA").
    write_iso9660(seed_iso_files(render_seed(config)), "cidata", out);
}

}  // namespace vmrt::image
