package scim

import "net/http"

type obj = map[string]any

func attr(name, typ string, extra obj) obj {
	a := obj{"name": name, "type": typ, "multiValued": false, "required": false, "caseExact": false,
		"mutability": "readWrite", "returned": "default", "uniqueness": "none"}
	for k, v := range extra {
		a[k] = v
	}
	return a
}

func (h *Handler) spConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, obj{
		"schemas":          []string{SchemaSPConfig},
		"documentationUri": "https://github.com/stepup-dev/stepup/blob/main/docs/scim.md",
		"patch":            obj{"supported": true},
		"bulk":             obj{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           obj{"supported": true, "maxResults": maxCount},
		"changePassword":   obj{"supported": true},
		"sort":             obj{"supported": false},
		"etag":             obj{"supported": true},
		"authenticationSchemes": []obj{{"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": true,
			"description": "a client_credentials access token of this issuer with scope stepup:scim"}},
		"meta": obj{"resourceType": "ServiceProviderConfig", "location": h.p.Issuer() + "/scim/v2/ServiceProviderConfig"},
	})
}

func (h *Handler) userSchemas() []obj {
	multi := func(name string) obj {
		return attr(name, "complex", obj{"multiValued": true, "subAttributes": []obj{
			attr("value", "string", nil), attr("type", "string", nil), attr("primary", "boolean", nil)}})
	}
	return []obj{{
		"schemas": []string{SchemaSchema}, "id": SchemaUser, "name": "User", "description": "User Account",
		"attributes": []obj{
			attr("userName", "string", obj{"required": true, "uniqueness": "server"}),
			attr("externalId", "string", obj{"caseExact": true}),
			attr("name", "complex", obj{"subAttributes": []obj{attr("formatted", "string", nil)}}),
			attr("displayName", "string", nil),
			multi("emails"), multi("phoneNumbers"),
			attr("active", "boolean", nil),
			attr("password", "string", obj{"mutability": "writeOnly", "returned": "never"}),
		},
		"meta": obj{"resourceType": "Schema", "location": h.p.Issuer() + "/scim/v2/Schemas/" + SchemaUser},
	}, {
		"schemas": []string{SchemaSchema}, "id": "urn:stepup:params:scim:schemas:extension:2.0:User", "name": "StepupUser",
		"description": "stepup's factors and imported secrets",
		"attributes": []obj{
			attr("passwordHash", "string", obj{"mutability": "writeOnly", "returned": "never", "caseExact": true}),
			attr("totpSecret", "string", obj{"mutability": "writeOnly", "returned": "never", "caseExact": true}),
			attr("emailMfa", "boolean", nil),
			attr("factors", "string", obj{"multiValued": true, "mutability": "readOnly"}),
		},
		"meta": obj{"resourceType": "Schema", "location": h.p.Issuer() + "/scim/v2/Schemas/urn:stepup:params:scim:schemas:extension:2.0:User"},
	}}
}

func (h *Handler) schemas(w http.ResponseWriter, r *http.Request) {
	s := h.userSchemas()
	writeJSON(w, http.StatusOK, obj{"schemas": []string{SchemaList}, "totalResults": len(s), "itemsPerPage": len(s), "startIndex": 1, "Resources": s})
}

func (h *Handler) resourceTypes(w http.ResponseWriter, r *http.Request) {
	rt := []obj{{
		"schemas": []string{SchemaResType}, "id": "User", "name": "User", "endpoint": "/Users", "schema": SchemaUser,
		"schemaExtensions": []obj{{"schema": "urn:stepup:params:scim:schemas:extension:2.0:User", "required": false}},
		"meta":             obj{"resourceType": "ResourceType", "location": h.p.Issuer() + "/scim/v2/ResourceTypes/User"},
	}}
	writeJSON(w, http.StatusOK, obj{"schemas": []string{SchemaList}, "totalResults": 1, "itemsPerPage": 1, "startIndex": 1, "Resources": rt})
}
