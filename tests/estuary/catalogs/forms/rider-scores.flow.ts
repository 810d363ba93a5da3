import { IDerivation, Document, SourceFromRides } from 'flow/acmeCo/rides/rider-scores.ts';

export class Derivation extends IDerivation {
    fromRides(read: { doc: SourceFromRides }): Document[] {
        return [{ rider_id: read.doc.rider?.rider_id ?? 0 }];
    }
}
