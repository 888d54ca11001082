"""The application: what the inbox (`ui/`) and the `henpin` command do, in one place.

Both doors call these functions, so an operator in the browser and a script on the command line
get the same checks, the same audit and the same data:

- `startup`: what each door does once before acting (the case store's schema);
- `ingest`: one ingestion pass now (`henpin poll`);
- `cases`: list, find and show cases; `claims`: who works on a case;
- `decide`: the one door to decide a case (one or many), checked and audited;
- `messages`: buyers' messages (open a case from one, settle one Henpin could not tell was sent);
- `parcels`: open a parcel case Amazon does not know about; `feeds`: answer for a feed's actions;
- `claim_packs`, `exports`, `metrics`, `replay`: what the seller takes out of Henpin.

Operators, sign-in and the audit log are `henpin.accounts` (the library keeps them, because
every decision's door checks and audits through it). Each function takes the case store's URL
(and the settings it needs) from its caller: the doors build them once, at their edge.
"""
