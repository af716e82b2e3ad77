import HTTPTypes
import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Segments and network segment ranges.
    func registerSegments(_ api: RouterGroup<Context>) {
        let service = self.service
        registerResource(api, key: "segment", collection: "segments", read: body, list: service.listSegments, create: service.createSegment,
                         show: service.segment, update: service.updateSegment, delete: service.deleteSegment)
        registerResource(api, key: "network_segment_range", collection: "network_segment_ranges", read: body, list: service.listSegmentRanges,
                         create: service.createSegmentRange, show: service.segmentRange, update: service.updateSegmentRange,
                         delete: service.deleteSegmentRange)
        registerTags(api, "network_segment_ranges", show: service.segmentRange) { id, caller, change in
            try await service.changeSegmentRangeTags(id, caller: caller, change)
        }
    }
}
