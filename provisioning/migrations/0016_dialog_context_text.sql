-- A call's context is one packed dialog variable (kemi/callvars.py): its value may be
-- longer than the 512 characters Kamailio's schema gives one field (a long Call-ID, CLI
-- and CLD together). text costs PostgreSQL nothing more than varchar.
ALTER TABLE dialog_vars ALTER COLUMN dialog_value TYPE text;
